"""A tiny run's outputs, opened with the tools a user opens them with: a browser, MLflow,
Jupyter, the embed pipeline and the compare pipeline. One shared `kedro run` (``tiny_run``)."""

from __future__ import annotations

import importlib.util
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from selfsup import embed_images
from selfsup.config import ParameterError
from selfsup.features import feature_matrix
from selfsup.pipelines.embed.nodes import embed_folder
from tests.conftest import run_kedro

FIGURES = (
    "training_curves",
    "collapse_monitor",
    "embedding_map",
    "retrieval_grid",
    "saliency_maps",
    "confusion_matrix",
    "cluster_montage",
    "augmentation_preview",
)
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def test_the_finetune_stage_joins_the_encoders_rows_of_metrics(tiny_run):
    reporting = tiny_run / "data" / "08_reporting"
    metrics = json.loads((reporting / "metrics.json").read_text())
    for row in ("ssl", "random_init"):
        assert 0.0 <= metrics[row]["finetune_10pct"] <= 1.0
        assert metrics["finetune_runs"][row]["finetune_10pct"]["steps"] == 10
    assert not any(key.startswith("finetune_") for key in metrics["raw_pixels"])
    stage = json.loads((reporting / "finetune_metrics.json").read_text())
    assert stage["ssl"] == {"finetune_10pct": metrics["ssl"]["finetune_10pct"]}


def test_report_files_hold_every_figure(tiny_run):
    reporting = tiny_run / "data" / "08_reporting"
    html = (reporting / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(FIGURES)
    assert sorted(p.name for p in (reporting / "figures").iterdir()) == sorted(f"{name}.png" for name in FIGURES)
    for name in ("data hash", "git commit", "pretraining wall time", "device", "torch", "kedro", "scikit-learn"):
        assert name in html
    data_hash = json.loads((tiny_run / "data" / "02_intermediate" / "data_summary.json").read_text())["data_hash"]
    assert data_hash in html and "collapse-alert" not in html


@pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER and _installed("selenium")),
    reason="needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver) and selenium",
)
def test_report_renders_in_headless_chromium(tiny_run, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1200,900",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        driver.get((tiny_run / "data" / "08_reporting" / "report.html").as_uri())
        rows = driver.find_elements(By.CSS_SELECTOR, "table#metrics tr")
        assert [row.find_element(By.TAG_NAME, "th").text for row in rows[1:]] == [
            "SSL features",
            "raw pixels",
            "random-init encoder",
        ]
        header = [cell.text for cell in rows[0].find_elements(By.TAG_NAME, "th")][1:]
        assert "finetune_10pct" in header
        for row in rows[1:]:
            cells = dict(zip(header, [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]))
            raw_pixels = row.get_attribute("class") == "raw_pixels"
            for key, text in cells.items():
                if raw_pixels and key.startswith("finetune_"):
                    assert text == "–"  # no encoder to fine-tune
                else:
                    assert 0.0 <= float(text) <= 1.0, key
        for name in FIGURES:
            image = driver.find_element(By.CSS_SELECTOR, f"figure#fig-{name} img")
            width, height, complete = driver.execute_script(
                "const i = arguments[0]; return [i.naturalWidth, i.naturalHeight, i.complete];", image
            )
            assert complete and width > 100 and height > 100, name
            assert image.size["width"] > 100 and image.size["height"] > 50, name
        screenshot = tmp_path / "report.png"
        assert driver.save_screenshot(str(screenshot))
    finally:
        driver.quit()
    pixels = np.asarray(Image.open(screenshot).convert("L"))
    assert pixels.shape[0] > 500 and pixels.std() > 10  # not a blank page


@pytest.mark.skipif(not _installed("kedro_mlflow"), reason="needs the mlflow extra: pip install -e '.[mlflow]'")
def test_mlflow_run_on_sqlite_records_parameters_metrics_and_artifacts(tiny_run):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tiny_run / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("selfsup")
    (run,) = client.search_runs([experiment.experiment_id], filter_string="attributes.run_name = '__default__'")
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["pretraining.method"] == "simclr" and params["pretraining.epochs"] == "2"
    assert params["evaluation.knn_k"] == "[5]"
    metrics = json.loads((tiny_run / "data" / "08_reporting" / "metrics.json").read_text())
    for row in ("ssl", "raw_pixels", "random_init"):
        for key, value in metrics[row].items():
            assert run.data.metrics[f"{row}.{key}"] == pytest.approx(value)
    artifacts = {artifact.path for artifact in client.list_artifacts(run.info.run_id)}
    assert {"report.html", "encoder.pt", "metrics.json", "figures"} <= artifacts


@pytest.mark.skipif(
    not (_installed("nbclient") and _installed("ipykernel")),
    reason="needs nbclient and ipykernel (the test or the notebook extra)",
)
def test_notebook_runs_top_to_bottom_on_the_run_outputs_through_the_catalog(tiny_run):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(tiny_run / "notebooks" / "explore_features.ipynb", as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tiny_run / "notebooks")}}
    ).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    assert sum("image/png" in output.get("data", {}) for output in outputs) == 2
    assert any("neighbours sharing the query's label" in output.get("text", "") for output in outputs)
    assert any("the base environment's run: 1797 images" in output.get("text", "") for output in outputs)


def _png_folder(root, images: np.ndarray, ids: list[str]):
    folder = root / "pngs"
    (folder / "nested").mkdir(parents=True)
    for position, (image, name) in enumerate(zip(images, ids)):
        target = folder / "nested" if position % 2 else folder
        Image.fromarray(image[0], "L").save(target / f"{name}.png")
    return folder


def test_embed_images_and_the_embed_pipeline_give_the_run_features(tiny_run, tmp_path):
    data = tiny_run / "data"
    images = np.load(data / "02_intermediate" / "images.npy")
    features = pd.read_parquet(data / "07_model_output" / "features.parquet")
    chosen = features.iloc[:12]
    folder = _png_folder(tmp_path, images[:12], list(chosen["id"]))
    checkpoint = data / "06_models" / "encoder.pt"

    embedded = embed_images(folder, checkpoint)
    assert list(embedded.columns[:2]) == ["id", "f000"] and len(embedded) == 12
    by_id = embedded.assign(id=embedded["id"].str.rsplit("/", n=1).str[-1].str.removesuffix(".png")).set_index("id")
    np.testing.assert_allclose(
        feature_matrix(by_id.loc[chosen["id"]].reset_index()), feature_matrix(chosen), rtol=1e-4, atol=1e-5
    )

    files = [str(folder / f"{chosen['id'].iloc[0]}.png"), str(folder / "nested" / f"{chosen['id'].iloc[1]}.png")]
    listed = embed_images(files, checkpoint)
    assert list(listed["id"]) == files
    np.testing.assert_allclose(feature_matrix(listed), feature_matrix(chosen.iloc[:2]), rtol=1e-4, atol=1e-5)
    with pytest.raises(FileNotFoundError, match="missing.png"):
        embed_images([*files, str(folder / "missing.png")], checkpoint)
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        embed_images(folder, tmp_path / "nope.pt")

    run_kedro(tiny_run, "run", "--pipelines", "embed", "--params", f"embed.path={folder},embed.checkpoint={checkpoint}")
    written = pd.read_parquet(data / "07_model_output" / "embeddings.parquet")
    pd.testing.assert_frame_equal(written, embedded, check_dtype=False)


def test_embed_pipeline_without_a_path_names_the_parameter():
    with pytest.raises(ParameterError, match="embed.path is required"):
        embed_folder({"checkpoint": "data/06_models/encoder.pt"})


def test_compare_puts_saved_runs_side_by_side(tiny_run):
    reporting = tiny_run / "data" / "08_reporting"
    (saved,) = (reporting / "metrics_history.json").iterdir()  # the tiny run's version
    metrics = json.loads((saved / "metrics_history.json").read_text())
    later = {**metrics, "ssl": {**metrics["ssl"], "knn_k5": 0.5}}  # a second run, saved by a later session
    later_version = reporting / "metrics_history.json" / "9999-12-31T23.59.59.999Z"
    later_version.mkdir()
    (later_version / "metrics_history.json").write_text(json.dumps(later))

    run_kedro(tiny_run, "run", "--pipelines", "compare")
    table = pd.read_csv(reporting / "runs_comparison.csv")
    assert list(table["run"]) == [saved.name, later_version.name]
    assert list(table["environment"]) == ["base", "base"]
    assert list(table["ssl.knn_k5"]) == pytest.approx([metrics["ssl"]["knn_k5"], 0.5])
    assert list(table["raw_pixels.linear"]) == pytest.approx([metrics["raw_pixels"]["linear"]] * 2)
    assert list(table["method"]) == ["simclr", "simclr"]
    page = (reporting / "runs_comparison.html").read_text()
    assert page.count("<tr>") == 3


PIPELINES = (
    "__default__",
    "ingestion",
    "augmentation",
    "pretraining",
    "feature_extraction",
    "finetune",
    "evaluation",
    "reporting",
    "compare",
    "embed",
    "detection",
    "text",
)


@pytest.mark.skipif(not _installed("kedro_viz"), reason="needs the viz extra: pip install -e '.[viz]'")
def test_kedro_viz_build_renders_every_pipeline_with_datasets_and_parameters(project_copy):
    run_kedro(project_copy, "viz", "build")  # exits 0 even when it fails: the files are the test
    build = project_copy / "build"
    assert "<html" in (build / "index.html").read_text().lower()
    main = json.loads((build / "api" / "main").read_text())
    assert {pipeline["id"] for pipeline in main["pipelines"]} == set(PIPELINES)
    names = {node["name"] for node in main["nodes"]}
    assert {"build_report", "evaluate", "metrics", "report", "features"} <= names
    assert any(node["type"] == "parameters" for node in main["nodes"])
    for name in PIPELINES:
        pipeline = json.loads((build / "api" / "pipelines" / name).read_text())
        assert pipeline["nodes"], name
