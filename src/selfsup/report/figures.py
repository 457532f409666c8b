"""The report's figures: one function per figure, each returning a matplotlib ``Figure``.

Figures are built with ``matplotlib.figure.Figure`` rather than ``pyplot`` so
that none stays registered in a global figure manager after the report is written.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from selfsup.collapse import COLLAPSE_THRESHOLD, MONITOR_EVERY_STEPS
from selfsup.features import feature_matrix
from selfsup.kmeans import kmeans_labels

WRONG = "#d62728"
RIGHT = "#2ca02c"


def training_curves(history: pd.DataFrame) -> Figure:
    """Loss and learning rate over optimisation steps."""
    figure = Figure(figsize=(11, 3.2))
    for axis, column, title in zip(figure.subplots(1, 2), ("loss", "lr"), ("training loss", "learning rate")):
        axis.plot(history["step"], history[column], linewidth=1)
        axis.set_title(title)
        axis.set_xlabel("step")
    figure.tight_layout()
    return figure


def monitor_readings(history: pd.DataFrame) -> pd.DataFrame:
    """The collapse monitor's (step, embedding_std) readings.

    The trainer measures the encoder every MONITOR_EVERY_STEPS steps and at the last
    step; several methods also log their projections' spread under ``embedding_std``
    on every step, which the monitor overwrites on its own steps only.
    """
    if "embedding_std" not in history:
        return pd.DataFrame({"step": [], "embedding_std": []})
    measured = ((history["step"] + 1) % MONITOR_EVERY_STEPS == 0) | (history["step"] == history["step"].max())
    return history.loc[measured & history["embedding_std"].notna(), ["step", "embedding_std"]]


def collapse_monitor(history: pd.DataFrame, collapsed: bool) -> Figure:
    """sqrt(d) × mean per-dimension std of normalised embeddings, with the collapse threshold."""
    figure = Figure(figsize=(6, 3.2))
    axis = figure.subplots()
    readings = monitor_readings(history)
    axis.plot(readings["step"], readings["embedding_std"], marker="o", markersize=3, linewidth=1)
    axis.axhline(COLLAPSE_THRESHOLD, color=WRONG, linestyle="--", linewidth=1, label=f"collapse ({COLLAPSE_THRESHOLD})")
    axis.set_ylim(bottom=0)
    axis.set_xlabel("step")
    axis.set_ylabel("embedding std")
    axis.legend(loc="best", fontsize=8)
    if collapsed:
        axis.set_title("COLLAPSED: every image gets nearly the same features", color=WRONG)
    else:
        axis.set_title("embedding spread (collapse monitor)")
    figure.tight_layout()
    return figure


def _two_d(x: np.ndarray, seed: int) -> tuple[np.ndarray, str]:
    """A 2-D map of ``x``: UMAP when umap-learn is installed, else t-SNE."""
    if importlib.util.find_spec("umap") is not None:
        import umap

        neighbours = int(min(15, len(x) - 1))
        return umap.UMAP(n_components=2, n_neighbors=neighbours, random_state=seed).fit_transform(x), "UMAP"
    from sklearn.manifold import TSNE

    perplexity = float(min(30, max(2, (len(x) - 1) // 3)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x), "t-SNE"


def embedding_map(features: pd.DataFrame, max_points: int, seed: int, n_clusters: int = 10) -> Figure:
    """2-D map of the test features (a seeded subsample), coloured by label, else by k-means cluster."""
    test = features[features["split"] == "test"]
    if len(test) == 0:
        test = features
    if len(test) > max_points:
        test = test.sample(max_points, random_state=seed)
    x = feature_matrix(test)
    points, method = _two_d(x, seed)
    figure = Figure(figsize=(6, 5.5))
    axis = figure.subplots()
    if test["label"].notna().all():
        colours, legend_title = test["label"].astype(int).to_numpy(), "label"
    else:
        colours, legend_title = kmeans_labels(x, min(n_clusters, len(x) - 1)), "k-means cluster"
    scatter = axis.scatter(points[:, 0], points[:, 1], c=colours, cmap="tab10", s=6)
    axis.legend(*scatter.legend_elements(), title=legend_title, fontsize=7, loc="best", markerscale=0.8)
    axis.set_title(f"{method} of {len(x)} test features")
    axis.set_xticks([])
    axis.set_yticks([])
    figure.tight_layout()
    return figure


def show_image(axis, image: np.ndarray) -> None:
    """Draw one uint8 (C, H, W) image without ticks."""
    if image.shape[0] == 1:
        axis.imshow(image[0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        axis.imshow(np.moveaxis(image[:3], 0, -1), interpolation="nearest")
    axis.set_xticks([])
    axis.set_yticks([])
    for spine in axis.spines.values():
        spine.set_visible(False)


def _frame(axis, colour: str) -> None:
    axis.add_patch(
        Rectangle((0, 0), 1, 1, transform=axis.transAxes, fill=False, edgecolor=colour, linewidth=4, clip_on=False)
    )


def image_positions(image_index: pd.DataFrame, ids: pd.Series) -> np.ndarray:
    """Rows of the image store holding ``ids`` (the store and ``image_index`` share their order)."""
    positions = pd.Index(image_index["id"]).get_indexer(ids)
    if (positions < 0).any():
        raise ValueError(f"features hold ids absent from image_index, e.g. {ids[positions < 0].iloc[0]!r}")
    return positions


def retrieval_queries(features: pd.DataFrame, n_queries: int, seed: int) -> pd.DataFrame:
    """The retrieval queries: a seeded sample of the test rows."""
    test = features[features["split"] == "test"]
    return test.sample(min(n_queries, len(test)), random_state=seed)


def nearest_training_images(
    features: pd.DataFrame, n_queries: int, k: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """The retrieval queries, the training rows, and each query's k nearest training rows by
    cosine similarity (positions in the training rows, nearest first)."""
    train = features[features["split"] == "train"]
    queries = retrieval_queries(features, n_queries, seed)
    query_x, train_x = _normalised(feature_matrix(queries)), _normalised(feature_matrix(train))
    neighbours = np.argsort(-(query_x @ train_x.T), axis=1, kind="stable")[:, : min(k, len(train))]
    return queries, train, neighbours


def retrieval_grid(
    images: np.ndarray, image_index: pd.DataFrame, features: pd.DataFrame, n_queries: int = 8, k: int = 8, seed: int = 0
) -> Figure:
    """Test images (left column) and their k nearest training images by cosine similarity.

    A neighbour whose label differs from the query's is framed in red, a matching one in green.
    """
    queries, train, neighbours = nearest_training_images(features, n_queries, k, seed)
    k = neighbours.shape[1]
    query_images = images[image_positions(image_index, queries["id"])]
    labelled = queries["label"].notna().all() and train["label"].notna().all()
    figure = Figure(figsize=(1.1 * (k + 1.3), 1.15 * len(queries)))
    axes = figure.subplots(len(queries), k + 1, squeeze=False)
    for row, (query, found) in enumerate(zip(queries.itertuples(), neighbours)):
        show_image(axes[row, 0], query_images[row])
        hits = train.iloc[found]
        hit_images = images[image_positions(image_index, hits["id"])]
        for column, (hit, image) in enumerate(zip(hits.itertuples(), hit_images), start=1):
            show_image(axes[row, column], image)
            if labelled:
                _frame(axes[row, column], RIGHT if hit.label == query.label else WRONG)
    axes[0, 0].set_title("query", fontsize=8)
    for column in range(1, k + 1):
        axes[0, column].set_title(f"#{column}", fontsize=8)
    figure.suptitle(
        f"{k} nearest training images of {len(queries)} test queries (cosine)"
        + ("; red frame: another label" if labelled else ""),
        fontsize=9,
    )
    figure.tight_layout()
    return figure


def _normalised(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def class_names(image_index: pd.DataFrame) -> dict[int, str]:
    """Label → class name, from the index's ``class_name`` column where the dataset names its classes."""
    if "class_name" not in image_index:
        return {}
    named = image_index[image_index["label"].notna() & image_index["class_name"].notna()]
    return dict(zip(named["label"].astype(int), named["class_name"].astype(str)))


def confusion_matrix(predictions: pd.DataFrame, names: dict[int, str] | None = None) -> Figure:
    """Linear-probe predictions against the true labels of the test split (row-normalised),
    the classes named by ``names`` (label → name) where given."""
    names = names or {}
    classes = np.unique(np.concatenate([predictions["label"].astype(int), predictions["linear"].astype(int)]))
    position = {c: i for i, c in enumerate(classes)}
    counts = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for true, predicted in zip(predictions["label"].astype(int), predictions["linear"].astype(int)):
        counts[position[true], position[predicted]] += 1
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    figure = Figure(figsize=(5.5, 5))
    axis = figure.subplots()
    image = axis.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(counts):
        if count:
            axis.text(
                j, i, str(count), ha="center", va="center", fontsize=7, color="white" if rates[i, j] > 0.5 else "black"
            )
    tick_labels = [names.get(int(label), str(label)) for label in classes]
    axis.set_xticks(range(len(classes)), tick_labels, fontsize=7, rotation=90 if names else 0)
    axis.set_yticks(range(len(classes)), tick_labels, fontsize=7)
    axis.set_xlabel("predicted by the linear probe")
    axis.set_ylabel("true label")
    accuracy = np.trace(counts) / counts.sum()
    axis.set_title(f"linear probe on SSL features: accuracy {accuracy:.3f}")
    figure.colorbar(image, ax=axis, fraction=0.046)
    figure.tight_layout()
    return figure


def cluster_montage(
    images: np.ndarray,
    image_index: pd.DataFrame,
    predictions: pd.DataFrame,
    per_cluster: int = 12,
    names: dict[int, str] | None = None,
) -> Figure:
    """A row of test images per k-means cluster of the SSL features, with the cluster's size and,
    for labelled images, its most common class (named by ``names`` where given) and that class's share."""
    names = names or {}
    clusters = sorted(predictions["kmeans_cluster"].unique())
    figure = Figure(figsize=(0.9 * per_cluster + 1.2, 0.95 * len(clusters) + 0.6))
    axes = figure.subplots(len(clusters), per_cluster, squeeze=False)
    for row, cluster in enumerate(clusters):
        members = predictions[predictions["kmeans_cluster"] == cluster]
        shown = members.head(per_cluster)
        positions = image_positions(image_index, shown["id"])
        for column in range(per_cluster):
            axis = axes[row, column]
            if column < len(shown):
                show_image(axis, images[positions[column]])
            else:
                axis.axis("off")
        axes[row, 0].set_ylabel(
            _cluster_label(cluster, members, names), fontsize=7, rotation=0, ha="right", va="center"
        )
    figure.suptitle("k-means clusters of the test features: cluster (size), first images", fontsize=9)
    figure.tight_layout()
    return figure


def _cluster_label(cluster: int, members: pd.DataFrame, names: dict[int, str]) -> str:
    label = f"{cluster} ({len(members)})"
    labels = members["label"].dropna().astype(int)
    if labels.empty:
        return label
    common = int(labels.mode().iloc[0])
    return f"{label}\n{names.get(common, common)} {np.mean(labels == common):.0%}"


def augmentation_preview(
    images: np.ndarray,
    image_index: pd.DataFrame,
    views: np.ndarray,
    n_images: int = 6,
    n_views: int = 8,
    on_the_fly: bool = False,
) -> Figure:
    """Training images (left) and the cached augmented views the model was trained on
    (with ``on_the_fly``, examples of the views generated anew for every batch)."""
    train_positions = np.flatnonzero((image_index["split"] == "train").to_numpy())
    shown = min(n_images, len(views))
    n_views = min(n_views, views.shape[1])
    figure = Figure(figsize=(max(5.0, 1.1 * (n_views + 1.3)), 1.15 * shown + 0.3))
    axes = figure.subplots(shown, n_views + 1, squeeze=False)
    for row in range(shown):
        show_image(axes[row, 0], images[train_positions[row]])
        for column in range(n_views):
            show_image(axes[row, column + 1], views[row, column])
    axes[0, 0].set_title("image", fontsize=8)
    for column in range(n_views):
        axes[0, column + 1].set_title(f"view {column + 1}", fontsize=8)
    figure.suptitle(
        "trained on views generated anew for every batch, e.g."
        if on_the_fly
        else f"trained on: {n_views} of {views.shape[1]} cached views per image",
        fontsize=9,
    )
    figure.tight_layout()
    return figure
