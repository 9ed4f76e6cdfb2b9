"""Analysis stage: error analysis, the robustness suite as the same hidden exam for every model,
significance against the reference (McNemar, --seeds), integrity signals, and the report's figures.

Pure functions are checked on hand-made cases; the pipeline with real TensorFlow workers on the
``tiny`` profile (conftest.py) and a small robustness suite, two small models per submission.
"""

from __future__ import annotations

import base64
import json
import math
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import ASSIGNMENT_TESTS, TINY_TEST_IMAGES, run_grade, small_suite

from harness.analysis import analyse as analysis
from harness.analysis.perturbations import build_suite, load_suite
from harness.cli import main
from harness.config.analysis import load_analysis_config
from harness.pipeline import REFERENCE_DIR
from harness.results import ModelResult, SeedRun
from harness.training import ahead, train
from harness.util.i18n import Translator

EN, FR = Translator("en"), Translator("fr")


# The pipeline tests' suite: the assignment's two tests, three MNIST-C corruptions, one severity sweep.
SMALL_SUITE = small_suite(
    [
        *ASSIGNMENT_TESTS,
        "mnist_c/shot_noise",
        "mnist_c/fog",
        "mnist_c/translate",
        "sweep/rotation/20",
        "sweep/rotation/45",
    ],
    subset=120,
)

SUBMISSION = """
import keras
from keras import layers


def create_baseline_model():
    model = keras.Sequential([keras.Input(shape=(28, 28, 1)), layers.Flatten(),
                              layers.Dense(32, activation="relu"), layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def create_improved_model_1():
    model = keras.Sequential([keras.Input(shape=(28, 28, 1)), layers.Conv2D(8, 3, activation="relu"),
                              layers.MaxPooling2D(), layers.Flatten(), layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model
"""


# --------------------------------------------------------------------------- pure functions


def one_hot(labels, confidence=0.9):
    labels = np.asarray(labels)
    p = np.full((len(labels), 10), (1 - confidence) / 9)
    p[np.arange(len(labels)), labels] = confidence
    return p


def test_error_analysis_hand_case():
    labels = np.array([0, 0, 1, 1, 2, 2, 7, 7, 7, 9])
    predicted = np.array([0, 1, 1, 1, 2, 7, 1, 1, 7, 9])
    confidence = np.array([0.9, 0.6, 0.9, 0.9, 0.9, 0.99, 0.7, 0.8, 0.9, 0.9])
    outputs = one_hot(predicted, 0.5)
    outputs[np.arange(10), predicted] = confidence
    outputs /= outputs.sum(axis=1, keepdims=True)
    a = analysis.error_analysis(
        labels,
        outputs,
        {"accuracy": [0.8, 0.95], "val_accuracy": [0.8, 0.9], "loss": [0.5, 0.2], "val_loss": [0.5, 0.3]},
    )
    assert a.n == 10 and a.errors == 4
    assert a.confusion[7][1] == 2 and a.confusion[0][1] == 1 and a.confusion[2][7] == 1
    assert a.confusion_normalized[7] == pytest.approx([0, 2 / 3, 0, 0, 0, 0, 0, 1 / 3, 0, 0], abs=1e-6)
    assert a.per_digit_error[0] == 0.5 and a.per_digit_error[7] == pytest.approx(2 / 3, abs=1e-6)
    assert a.per_digit_error[3] is None and a.per_digit_count[7] == 3
    assert (a.most_confused[0].true, a.most_confused[0].predicted, a.most_confused[0].count) == (7, 1, 2)
    assert [i.index for i in a.first_errors] == [1, 5, 6, 7]  # test order, like the assignment
    assert [i.index for i in a.confident_errors][:2] == [5, 7]  # most sure first
    assert a.first_errors[0].true == 0 and a.first_errors[0].predicted == 1
    assert a.calibration.n_bins == 15 and "equal-width" in a.calibration.binning
    assert sum(b.count for b in a.calibration.bins) == 10
    assert a.overfitting.accuracy_gap == pytest.approx(0.05)


def test_logit_outputs_are_softmaxed_for_calibration():
    logits = np.log(one_hot([1, 2, 3])) * 3 + 5  # rows do not sum to 1
    a = analysis.error_analysis(np.array([1, 2, 4]), logits)
    assert a.calibration.outputs == "logits" and a.errors == 1 and 0 <= a.calibration.ece <= 1


@pytest.fixture(scope="module")
def small_suite(tmp_path_factory, mnist_arrays):
    folder = tmp_path_factory.mktemp("small-suite")
    (folder / "suite.toml").write_text(SMALL_SUITE, encoding="utf-8")
    x = (mnist_arrays["x_test"][:200].reshape(-1, 28, 28, 1) / 255.0).astype("float32")
    return build_suite(x, load_suite(folder / "suite.toml"), folder / "cache"), mnist_arrays["y_test"][:200]


def fake_predictions(built, labels, wrong_every: dict[str, int]) -> analysis.Predictions:
    """Predictions that are right except every k-th image of the named entries."""
    suite = {}
    for entry in built:
        predicted = labels[entry.indices].copy()
        k = wrong_every.get(entry.name)
        if k:
            predicted[::k] = (predicted[::k] + 1) % 10
        suite[entry.name] = (predicted, np.full(len(predicted), 0.9))
    return analysis.Predictions(one_hot(labels), suite, built.checksum, 0.1, 0.5)


def test_robustness_summary_and_corruption_error_relative_to_the_reference(small_suite):
    built, labels = small_suite
    reference = analysis.robustness(
        labels,
        fake_predictions(
            built,
            labels,
            {
                "assignment/noise": 10,
                "mnist_c/shot_noise": 4,
                "mnist_c/fog": 2,
                "mnist_c/translate": 5,
                "sweep/rotation/20": 6,
                "sweep/rotation/45": 3,
            },
        ),
        built,
    )
    assert reference.clean_accuracy == 1.0 and reference.noise_accuracy == 0.9 and reference.rotation_accuracy == 1.0
    assert reference.mnist_c_accuracy == pytest.approx(1 - (0.25 + 0.5 + 0.2) / 3, abs=1e-6)
    assert reference.relative_mce is None  # no reference given
    model = analysis.robustness(
        labels,
        fake_predictions(built, labels, {"mnist_c/shot_noise": 8, "mnist_c/fog": 2, "mnist_c/translate": 10}),
        built,
        reference,
    )
    relative = {e.name: e.relative_error for e in model.entries if e.group == "mnist_c"}
    assert relative == pytest.approx({"mnist_c/shot_noise": 0.5, "mnist_c/fog": 1.0, "mnist_c/translate": 0.5})
    assert model.relative_mce == pytest.approx(2 / 3, abs=1e-6)
    (curve,) = model.curves
    assert curve.family == "rotation" and curve.severities == [0.0, 20.0, 45.0] and curve.n == 120
    assert model.suite_checksum == built.checksum and model.images == 2 * 200 + 5 * 120
    # predictions made on another suite are not scored against this one
    stale = fake_predictions(built, labels, {})
    stale.suite_checksum = "0" * 64
    assert analysis.robustness(labels, stale, built) is None


def test_mcnemar_against_the_reference_hand_case():
    labels = np.zeros(20, int)
    reference = one_hot([0] * 12 + [1] * 8)  # reference right on images 0..11
    model = one_hot([0] * 10 + [1] * 2 + [0] * 7 + [1])  # model right on 0..9 and 12..18
    test = analysis.mcnemar(labels, reference, model, alpha=0.05)
    # only the reference right: images 10, 11 -> b = 2; only the model right: 12..18 -> c = 7
    # p = 2 * P(Binomial(9, 1/2) <= 2) = 2 * (1 + 9 + 36) / 512
    assert (test.b, test.c, test.n) == (2, 7, 20)
    assert test.p_value == pytest.approx(2 * sum(math.comb(9, k) for k in range(3)) / 2**9)
    assert test.gain == pytest.approx(5 / 20) and not test.significant


def test_seed_gains_pair_runs_by_seed():
    runs = lambda accs, status="ok": [SeedRun(seed=s, status=status, test_accuracy=a) for s, a in accs]
    ci = analysis.seed_gains(runs([(1, 0.95), (2, 0.96), (3, 0.94)]), runs([(2, 0.95), (1, 0.94), (3, 0.93)]), 0.95)
    assert ci.seeds == [1, 2, 3] and ci.gains == pytest.approx([0.01, 0.01, 0.01])
    assert ci.std == pytest.approx(0, abs=1e-9) and ci.low == pytest.approx(0.01)
    assert analysis.seed_gains(runs([(1, 0.9)]), runs([(1, 0.8)]), 0.95) is None  # one seed: no interval


def test_derive_seeds_is_deterministic_and_starts_with_the_seed():
    assert analysis.derive_seeds(20260901, 4) == analysis.derive_seeds(20260901, 4)
    seeds = analysis.derive_seeds(20260901, 4)
    assert seeds[0] == 20260901 and len(set(seeds)) == 4 and all(0 <= s < 2**31 for s in seeds)
    assert analysis.derive_seeds(1, 3)[1:] != analysis.derive_seeds(2, 3)[1:]
    with pytest.raises(ValueError):
        analysis.derive_seeds(1, 0)


def model(name="create_improved_model_1", role="improved", test=0.95, val=0.95, params=100_000, epochs=5, **extra):
    return ModelResult(
        name=name,
        role=role,
        status="ok",
        test_accuracy=test,
        val_accuracy=val,
        params=params,
        epochs_run=epochs,
        history={"val_accuracy": [val]} if val is not None else {},
        **extra,
    )


def test_integrity_test_above_validation():
    settings = load_analysis_config().integrity
    reference = model("create_baseline_model", "reference", 0.99, 0.99, 225_034, 5)
    honest = analysis.integrity_flags(model(test=0.990, val=0.988), reference, 12_000, 10_000, settings, EN)
    assert honest == []
    leaked = analysis.integrity_flags(model(test=0.995, val=0.97), reference, 12_000, 10_000, settings, EN)
    assert [f.rule for f in leaked] == ["test_above_validation"] and "97.00" in leaked[0].reason
    # on small sets the tolerance widens with the standard error: 4 points on 400/1000 images is noise
    assert analysis.integrity_flags(model(test=0.84, val=0.80), reference, 400, 1000, settings, EN) == []
    ceiling = analysis.integrity_flags(model(test=0.9995, val=0.999), reference, 12_000, 10_000, settings, FR)
    assert ceiling and "plafond" in ceiling[0].reason


def test_the_test_set_being_easier_for_the_reference_too_is_no_flag():
    # on the full protocol the reference itself is above its validation accuracy (MNIST's test digits are the
    # more carefully written), and honest student models were measured up to 0.46 point above theirs
    settings = load_analysis_config().integrity
    honest = model(test=0.9868, val=0.9812)  # 0.56 point above: past the 0.55-point tolerance on 12,000/10,000
    without_shift = model("create_baseline_model", "reference", 0.9890, 0.9890, 225_034, 5)
    assert [f.rule for f in analysis.integrity_flags(honest, without_shift, 12_000, 10_000, settings, EN)] == [
        "test_above_validation"
    ]
    easier_test_set = model("create_baseline_model", "reference", 0.9890, 0.9865, 225_034, 5)  # +0.25 point
    assert analysis.integrity_flags(honest, easier_test_set, 12_000, 10_000, settings, EN) == []
    leaked = analysis.integrity_flags(model(test=0.995, val=0.97), easier_test_set, 12_000, 10_000, settings, EN)
    assert [f.rule for f in leaked] == ["test_above_validation"]  # a lookup is far past any shift
    harder_test_set = model("create_baseline_model", "reference", 0.9850, 0.9890, 225_034, 5)
    assert analysis.integrity_flags(honest, harder_test_set, 12_000, 10_000, settings, EN) != []  # never stricter


def test_integrity_capacity_rule():
    settings = load_analysis_config().integrity
    reference = model("create_baseline_model", "reference", 0.96, 0.96, 225_034, 5)
    tiny = analysis.integrity_flags(model(test=0.99, val=0.99, params=8_000), reference, 12_000, 10_000, settings, EN)
    assert [f.rule for f in tiny] == ["capacity"] and "8 000 parameters" in tiny[0].reason
    short = analysis.integrity_flags(model(test=0.99, val=0.99, epochs=1), reference, 12_000, 10_000, settings, EN)
    assert [f.rule for f in short] == ["capacity"] and "1 epoch" in short[0].reason
    # a big model trained as long, or a small one that gains little: nothing to look at
    assert analysis.integrity_flags(model(test=0.99, val=0.99), reference, 12_000, 10_000, settings, EN) == []
    assert (
        analysis.integrity_flags(model(test=0.965, val=0.965, params=8_000), reference, 12_000, 10_000, settings, EN)
        == []
    )
    # a reference that has not learned yet (one short epoch: the smoke profile) is outrun by any fast learner
    unlearned = model("create_baseline_model", "reference", 0.66, 0.66, 225_034, 1)
    fast = model(test=0.72, val=0.72, params=6_810, epochs=1)
    assert analysis.integrity_flags(fast, unlearned, 400, 1_000, settings, EN) == []


def test_integrity_reasons_follow_the_report_language():
    """A flag raised while grading in French reads in English when the report is re-rendered in English."""
    settings = load_analysis_config().integrity
    reference = model("create_baseline_model", "reference", 0.96, 0.96, 225_034, 5)
    (flag,) = analysis.integrity_flags(
        model(test=0.99, val=0.99, params=8_000, epochs=1), reference, 12_000, 10_000, settings, FR
    )
    assert "paramètres" in flag.reason and "époque" in flag.reason
    stored = type(flag).model_validate_json(flag.model_dump_json())
    english = EN.render(stored.message)
    assert english.startswith("8 000 parameters against 225 034 for the reference, 1 epoch(s) against 5")
    assert "99.00 % against 96.00 %" in english and "paramètres" not in english


def test_verdict_codes_and_language():
    reference = model("create_baseline_model", "reference", 0.98)

    def with_test(gain, p, seeds=None):
        from harness.results import GainInterval, McNemarTest, Significance

        k = round(gain * 10_000)
        test = McNemarTest(
            against="reference",
            n=10_000,
            b=40 + max(0, -k),
            c=40 + max(0, k),
            p_value=p,
            gain=gain,
            alpha=0.05,
            significant=p < 0.05,
        )
        interval = (
            None
            if seeds is None
            else GainInterval(
                seeds=[1, 2, 3], gains=[gain] * 3, mean=gain, std=0.001, low=seeds[0], high=seeds[1], confidence=0.95
            )
        )
        return model(test=0.98 + gain, significance=Significance(mcnemar=test, seeds=interval))

    assert analysis.verdict([with_test(0.004, 0.001)], reference, EN).verdict == "beats"
    assert analysis.verdict([with_test(0.004, 0.001, (-0.001, 0.009))], reference, EN).verdict == "not_significant"
    assert analysis.verdict([with_test(0.001, 0.4)], reference, EN).verdict == "not_significant"
    assert analysis.verdict([with_test(-0.01, 0.001)], reference, EN).verdict == "worse"
    assert analysis.verdict([], reference, EN).verdict == "no_model"
    fr = analysis.verdict([with_test(0.004, 0.001, (0.001, 0.007))], reference, FR)
    assert fr.verdict == "beats" and "bat la référence" in fr.verdict_text and "3 graines" in fr.verdict_text
    english = analysis.verdict([with_test(0.004, 0.001)], reference, EN).verdict_text
    assert "beats the reference (98.00 %) beyond noise: +0.40 points" in english and "p = 0.001" in english


# --------------------------------------------------------------------------- the pipeline, real workers


class JobSpy:
    """Records which files each worker job was allowed to read."""

    def __init__(self, monkeypatch):
        self.jobs: list[tuple[str, list[Path]]] = []
        for module in (train, ahead):  # cold training workers; evaluation and warm training workers
            original = module.run_job

            def spy(job, scratch, *, readable, _original=original, **kwargs):
                self.jobs.append((job["mode"], [Path(p) for p in readable], job))
                return _original(job, scratch, readable=readable, **kwargs)

            monkeypatch.setattr(module, "run_job", spy)


@pytest.fixture(scope="module")
def module_monkeypatch():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def suite_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("suite-file") / "small_suite.toml"
    path.write_text(SMALL_SUITE, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def submission(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("analysis-class") / "ana.py"
    path.write_text(textwrap.dedent(SUBMISSION), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, submission, mnist_npz, protocol_path, suite_file, module_monkeypatch, stage_cache):
    """A submission with two small models graded with --seeds 2 on the tiny profile and the small suite
    (up to 8 workers: train and evaluate, reference and student, two seeds; the session's stage cache
    may already hold the seed's reference)."""
    module_monkeypatch.setenv(analysis.SUITE_CACHE_ENV, str(tmp_path_factory.mktemp("suite-a")))  # its own suite
    spy = JobSpy(module_monkeypatch)
    out = tmp_path_factory.mktemp("seeded") / "out"
    graded = run_grade(
        [submission],
        out,
        protocol=protocol_path,
        data=mnist_npz,
        cache=stage_cache,
        workers=1,
        seeds=2,
        suite=suite_file,
    )
    graded.spy = spy
    return graded


@pytest.fixture(scope="module")
def rerun(seeded, submission, tmp_path_factory, mnist_npz, protocol_path, suite_file, module_monkeypatch):
    """The submission graded again from scratch into a new folder, one seed: its models retrained, the
    suite rebuilt (the reference's folder is copied, to save a training)."""
    out = tmp_path_factory.mktemp("rerun") / "out"
    shutil.copytree(seeded.out / REFERENCE_DIR, out / REFERENCE_DIR)
    module_monkeypatch.setenv(analysis.SUITE_CACHE_ENV, str(tmp_path_factory.mktemp("suite-b")))
    return run_grade(
        [submission],
        out,
        protocol=protocol_path,
        data=mnist_npz,
        cache=None,
        use_cache=False,
        workers=1,
        suite=suite_file,
    )


@pytest.mark.slow
def test_every_trained_model_has_the_analysis_fields(seeded):
    result = seeded.result("ana")
    assert result.status == "ok" and len(result.models) == 2
    for m in result.models:
        a = m.error_analysis
        assert a.n == TINY_TEST_IMAGES and len(a.confusion) == 10 and sum(map(sum, a.confusion)) == TINY_TEST_IMAGES
        assert a.errors == m.test_errors and len(a.per_digit_error) == 10
        assert len(a.first_errors) == min(10, a.errors) and a.calibration.n_bins == 15
        assert a.overfitting is not None and a.overfitting.epochs == 1
        r = m.robustness
        assert r.clean_accuracy == pytest.approx(m.test_accuracy, abs=1e-6)
        assert r.noise_accuracy is not None and r.rotation_accuracy is not None and r.mnist_c_accuracy is not None
        assert [e.name for e in r.entries] == load_suite(seeded_suite(seeded)).names
        assert r.relative_mce is not None and r.predict_seconds is not None and r.images == 2 * 300 + 5 * 120
        assert m.significance.mcnemar.against == "reference"
    reference = result.reference.model
    assert reference.robustness.relative_mce == pytest.approx(1.0) and reference.error_analysis is not None
    assert result.analysis.best_model == "create_improved_model_1"
    assert result.analysis.verdict in ("beats", "not_significant", "worse")
    assert "référence" in result.analysis.verdict_text  # French by default
    assert (seeded.out / "ana" / "gallery.npz").exists() and result.analysis.gallery_file == "gallery.npz"
    assert (seeded.out / "ana" / "result.json").stat().st_size < 150_000


def seeded_suite(graded) -> Path:
    return Path(json.loads((graded.out / "_suite" / "suite.json").read_text(encoding="utf-8"))["suite_file"])


@pytest.mark.slow
def test_every_model_sees_the_same_perturbed_images(seeded, rerun):
    result = seeded.result("ana")
    run_checksum = result.run.suite_checksum
    manifest = json.loads((seeded.out / "_suite" / "suite.json").read_text(encoding="utf-8"))
    assert run_checksum == manifest["checksum"] and len(run_checksum) == 64
    assert result.reference.model.robustness.suite_checksum == run_checksum
    for m in result.models:  # the student's two models, and the reference: the same sets
        assert m.robustness.suite_checksum == run_checksum
        with np.load(seeded.out / "ana" / "models" / m.predictions_file) as npz:
            assert str(npz["suite_checksum"]) == run_checksum
    # another grading run rebuilds the suite in its own folder: byte for byte the same images
    assert rerun.result("ana").run.suite_checksum == run_checksum
    again = json.loads((rerun.out / "_suite" / "suite.json").read_text(encoding="utf-8"))
    assert again["directory"] != manifest["directory"]
    assert [e["sha256"] for e in again["entries"]] == [e["sha256"] for e in manifest["entries"]]


@pytest.mark.slow
def test_training_workers_never_see_the_suite_and_evaluation_reads_it(seeded):
    suite_dir = Path(json.loads((seeded.out / "_suite" / "suite.json").read_text(encoding="utf-8"))["directory"])
    train_jobs = [readable for mode, readable, _ in seeded.spy.jobs if mode == "train"]
    eval_jobs = [readable for mode, readable, _ in seeded.spy.jobs if mode == "evaluate"]
    student_eval = [
        job
        for mode, _, job in seeded.spy.jobs
        if mode == "evaluate" and job["models_dir"] == str(seeded.out / "ana" / "models")
    ]
    assert train_jobs and eval_jobs
    for readable in train_jobs:
        assert not any(suite_dir in p.parents or p == suite_dir for p in readable) and len(readable) == 1
        assert all("test" not in p.name for p in readable)
    # the seed-0 evaluations read the suite's folder; extra-seed ones only the clean test set
    assert len(student_eval) == 1 and student_eval[0]["suite"]["dir"] == str(suite_dir)
    assert all(len(e["sha256"]) == 64 for e in student_eval[0]["suite"]["entries"])
    assert any(suite_dir in readable for readable in eval_jobs)
    assert any(suite_dir not in readable for readable in eval_jobs)  # the second seed's: clean set only


@pytest.mark.slow
def test_mcnemar_figures_match_the_stored_predictions(seeded, mnist_arrays):
    result = seeded.result("ana")
    labels = mnist_arrays["y_test"][:TINY_TEST_IMAGES]
    with np.load(seeded.out / REFERENCE_DIR / "models" / result.reference.model.predictions_file) as npz:
        reference_right = npz["probabilities"].argmax(axis=1) == labels
    for m in result.models:
        with np.load(seeded.out / "ana" / "models" / m.predictions_file) as npz:
            right = npz["probabilities"].argmax(axis=1) == labels
        test = m.significance.mcnemar
        assert test.b == int(np.sum(reference_right & ~right)) and test.c == int(np.sum(~reference_right & right))
        assert test.gain == pytest.approx(m.test_accuracy - result.reference.model.test_accuracy, abs=1e-6)


@pytest.mark.slow
def test_two_seeds_give_a_confidence_interval(seeded):
    result = seeded.result("ana")
    seeds = result.run.seeds
    assert len(seeds) == 2 and seeds[0] == result.run.seed
    reference = result.reference.model
    assert [r.seed for r in reference.seed_runs] == seeds and all(r.test_accuracy for r in reference.seed_runs)
    for m in result.models:
        assert [r.seed for r in m.seed_runs] == seeds
        assert m.seed_runs[0].test_accuracy == m.test_accuracy
        ci = m.significance.seeds
        assert ci.seeds == seeds and ci.confidence == 0.95 and ci.std is not None
        gains = [a.test_accuracy - b.test_accuracy for a, b in zip(m.seed_runs, reference.seed_runs)]
        assert ci.gains == pytest.approx(gains, abs=1e-6) and ci.mean == pytest.approx(np.mean(gains), abs=1e-6)
        assert ci.low <= ci.mean <= ci.high
    assert (seeded.out / "ana" / "seeds" / str(seeds[1]) / "models").is_dir()
    assert "2 graines" in result.analysis.verdict_text


@pytest.mark.slow
def test_rerun_gives_identical_robustness_figures(seeded, rerun):
    first, second = seeded.result("ana"), rerun.result("ana")
    for a, b in zip(first.models, second.models):
        assert not b.from_cache  # really retrained
        assert b.robustness.model_dump(exclude={"predict_seconds"}) == a.robustness.model_dump(
            exclude={"predict_seconds"}
        )
        assert b.error_analysis == a.error_analysis
        assert b.significance.mcnemar == a.significance.mcnemar


@pytest.mark.slow
def test_report_has_the_analysis_figures_and_rerenders_in_english(seeded, tmp_path):
    html = (seeded.out / "ana" / "report.html").read_text(encoding="utf-8")
    alts = [
        "Taux d&#39;erreur par chiffre",
        "matrice de confusion create_improved_model_1",
        "Diagramme de fiabilité create_improved_model_1",
        "Erreurs de classification create_improved_model_1",
        "Exemples : originales, bruitées, pivotées",
        "Exemples des corruptions MNIST-C",
        "Exactitude sur les données altérées",
        "Exactitude selon la sévérité",
    ]
    for alt in alts:
        marker = f'<img alt="{alt}" src="data:image/png;base64,'
        assert marker in html, alt
        data = html.split(marker, 1)[1].split('"', 1)[0]
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    assert "L&#39;amélioration est-elle réelle ?" in html and "McNemar" in html
    copy = tmp_path / "out"
    shutil.copytree(seeded.out, copy)
    shutil.rmtree(copy / ".work")  # the report needs neither the suite cache nor the data
    assert main(["report", str(copy), "--lang", "en"]) == 0
    english = (copy / "ana" / "report.html").read_text(encoding="utf-8")
    assert "Is the improvement real?" in english and "Misclassified images create_improved_model_1" in english
    assert "exact McNemar test" in english and "Robustness (the same hidden exam" in english
    summary = json.loads((copy / "class.json").read_text(encoding="utf-8"))
    assert {s["student"]: s["verdict"] for s in summary["students"]}["ana"] == seeded.result("ana").analysis.verdict
    # the rubric's reasons too, with the points unchanged and result.json untouched
    assert "models built and trained;" in english and "modèles construits et entraînés" not in english
    assert (copy / "ana" / "result.json").read_bytes() == (seeded.out / "ana" / "result.json").read_bytes()
    assert summary["students"][0]["total"] == seeded.result("ana").score.total


def test_figures_draw_from_stored_results_alone(small_suite):
    from harness.report import figures

    built, labels = small_suite
    reference = model("create_baseline_model", "reference", 0.9)
    predictions = fake_predictions(built, labels, {"mnist_c/fog": 3, "sweep/rotation/45": 2})
    outputs = one_hot(np.where(np.arange(len(labels)) % 7 == 0, (labels + 1) % 10, labels))
    analysed = reference.model_copy(
        update={
            "error_analysis": analysis.error_analysis(labels, outputs),
            "robustness": analysis.robustness(labels, predictions, built),
        }
    )
    student = analysed.model_copy(update={"name": "create_improved_model_1", "role": "improved"})
    images = {i: np.zeros((28, 28), np.uint8) for i in analysis.gallery_indices([student])}
    examples = {
        "clean": np.zeros((5, 28, 28), np.uint8),
        "entries": {e.name: np.zeros((5, 28, 28), np.uint8) for e in built},
    }
    drawn = [
        figures.confusion_heatmap(student, FR),
        figures.reliability_diagram(student, FR),
        figures.per_digit_error_bars([analysed, student], FR),
        figures.misclassified_gallery(student, images, FR),
        figures.assignment_examples(examples, FR),
        figures.suite_examples(examples, FR),
        figures.robustness_bars([analysed, student], EN),
        figures.severity_curves([analysed, student], EN),
    ]
    for uri in drawn:
        assert uri and uri.startswith("data:image/png;base64,")
        assert base64.b64decode(uri.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert figures.misclassified_gallery(student, {}, FR) is None  # no images stored: no gallery
    assert figures.robustness_bars([reference], FR) is None


def test_the_suite_cache_is_shared_per_user_unless_told_otherwise(tmp_path, monkeypatch):
    monkeypatch.delenv(analysis.SUITE_CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert analysis.suite_cache_dir(tmp_path / "out") == tmp_path / "xdg" / "harness" / "suites"
    assert (tmp_path / "xdg" / "harness" / "suites").is_dir()
    monkeypatch.setenv(analysis.SUITE_CACHE_ENV, str(tmp_path / "mine"))
    assert analysis.suite_cache_dir(tmp_path / "out") == tmp_path / "mine"
    monkeypatch.delenv(analysis.SUITE_CACHE_ENV)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")  # the cache home cannot be created: the output folder's own
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert analysis.suite_cache_dir(tmp_path / "out") == tmp_path / "out" / ".work" / "suite"
