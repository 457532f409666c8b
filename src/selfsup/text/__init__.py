"""Texts, the second modality: readers, the WordPiece tokenizer, the Transformer encoder and its methods.

Each concern has its own module, behind the same stage contracts as images
(docs/protocol.md, "Texts"): the readers give ``texts`` and ``text_index``
(the ``image_index`` columns), pretraining gives the same ``encoder``,
``training_history`` and ``training_summary``, feature extraction the same
``features`` tables, and the evaluation protocol is the images' one.
"""
