"""``detection_report.html``: the detection comparison's table and test images with their boxes."""

from __future__ import annotations

import html

from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from selfsup.detection.boxed_images import BoxedImages
from selfsup.detection.comparison import SCORES
from selfsup.detection.train import Detections
from selfsup.report.figures import show_image
from selfsup.report.html import STYLE, figure_element, png_bytes

ENCODER_TITLES = {"ssl": "SSL encoder", "random_init": "random-init encoder", "supervised": "supervised encoder"}
SHOWN_SCORE = 0.3  # predicted boxes drawn in the figure: those scoring at least this
BOXES_CAPTION = "Test images with their true boxes and each encoder's detections (its first seed)."


def _draw_boxes(axis, boxes, labels, class_names: tuple[str, ...], colour: str) -> None:
    for (x0, y0, x1, y1), label in zip(boxes, labels):
        axis.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor=colour, linewidth=1))
        axis.text(x0, y0 - 1, class_names[int(label)], color=colour, fontsize=5, va="bottom")


def boxes_figure(test: BoxedImages, examples: dict[tuple[str, str], Detections], count: int) -> Figure:
    """The first ``count`` test images: the true boxes, then each encoder and mode's predicted ones."""
    count = min(count, len(test))
    columns = [("true boxes", None), *((f"{ENCODER_TITLES[e]}, {m}", found) for (e, m), found in examples.items())]
    figure = Figure(figsize=(1.6 * len(columns), 1.6 * count + 0.5))
    axes = figure.subplots(count, len(columns), squeeze=False)
    for row in range(count):
        for column, (title, found) in enumerate(columns):
            axis = axes[row, column]
            show_image(axis, test.images[row])
            if found is None:
                _draw_boxes(axis, test.boxes[row], test.labels[row], test.class_names, "lime")
            else:
                shown = found.scores[row] >= SHOWN_SCORE
                _draw_boxes(axis, found.boxes[row][shown], found.labels[row][shown], test.class_names, "orangered")
            if row == 0:
                axis.set_title(title, fontsize=7)
    figure.suptitle(f"test images: true boxes (green) and detections scoring ≥ {SHOWN_SCORE} (red), first seed")
    figure.tight_layout()
    return figure


def comparison_table(table: dict) -> str:
    """Mean ± standard deviation over the seeds of every score, one row per encoder and backbone mode."""
    header = "".join(f"<th>{score}</th>" for score in SCORES)
    rows = []
    for encoder, modes in table.items():
        for mode, values in modes.items():
            cells = "".join(f"<td>{values[s]:.3f} ± {values[f'{s}_std']:.3f}</td>" for s in SCORES)
            title = html.escape(f"{ENCODER_TITLES[encoder]}, {mode}")
            rows.append(f'<tr class="{encoder}"><th>{title}</th>{cells}<td>{values["seeds"]}</td></tr>')
    return f'<table id="detection"><tr><th>encoder</th>{header}<th>seeds</th></tr>{"".join(rows)}</table>'


def detection_html(metrics: dict, figure: Figure) -> str:
    """The whole report as one HTML string that opens offline."""
    data = metrics["data"]
    facts = html.escape(
        f"{data['train_images']} training and {data['test_images']} test images of {data['image_size']} pixels "
        f"({data['source']}), {len(data['class_names'])} classes; {metrics['recipe']}"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>selfsup detection</title><style>{STYLE}</style></head>
<body>
<h1>Object detection on the encoders</h1>
<p>FCOS on each encoder's stride-8 and stride-16 feature maps, the encoder frozen or fine-tuned, the same
detector and schedule for every encoder; COCO mAP (IoU 0.50:0.95) and mAP50 on the test images, over the
classes and class-agnostic (every box one class: localisation alone). Mean ± standard deviation over the seeds.</p>
<p id="detection-data">{facts}</p>
{comparison_table(metrics["table"])}
{figure_element("detection_boxes", BOXES_CAPTION, png_bytes(figure))}
</body></html>
"""
