"""Rule ``analysis``: the critical sections written, the best-model claim checked, printed numbers compared.

The student's commentary in each analysis section earns its points by its words; the model the
text calls best is checked against the harness's measured best; accuracies the student's run
printed are compared with the harness's (shown, scored only when ``reported_numbers_points`` > 0).
Claims and numbers are held against the student only on a comparable profile. Parameters
documented in ``rubric/default.toml``.
"""

from __future__ import annotations

import functools
import re

from harness.scoring.evidence import (
    Evidence,
    Notes,
    Verdict,
    component,
    excerpt,
    model_doubts,
    not_done,
    ratio,
    section_share,
    text_doubts,
)
from harness.scoring.readers import methodology as rubric_methodology
from harness.scoring.readers import models as rubric_models
from harness.scoring.readers import substance as rubric_substance
from harness.scoring.readers import text as rubric_text
from harness.scoring.rules.registry import RuleParams, rule
from harness.scoring.thresholds import at_most, beyond
from harness.util.i18n import Translator


class AnalysisParams(RuleParams):
    """The ``analysis`` criterion's parameters (see ``rubric/default.toml``)."""

    sections_points: dict[str, float] = {"errors": 0.25, "robustness": 0.25, "conclusion": 0.25}
    min_words: int = 30
    substance_points: dict[str, float] = {}
    markers: dict[str, list[list[str]]] = {}
    not_analysis: list[str] = ["introduction", "baseline", "improvements"]
    # markers that observe what the models did (a digit, a number); without one of them the other
    # markers (causes, limits) explain nothing observed and earn `ungrounded_share` of their points
    grounding_markers: list[str] = ["error_patterns", "robustness", "comparisons"]
    # interpretations that earn in full only when their own sentence holds an observation (a number)
    self_grounded_markers: list[str] = []
    # what a grounding marker's sentence must hold to ground the rest: something observed, a number
    # ("a robust model should handle noise without a big drop" observes nothing)
    grounding_evidence: list[str] = ["\\d"]
    ungrounded_share: float = 0.5
    # an accuracy above this (a share) is beyond what the assignment's models reach on MNIST: a
    # sentence quoting one earns no marker and the claims part is 0, on every profile
    plausible_max_accuracy: float = 0.997
    # a text that quotes a number no model of this kind reaches observed nothing it can be held to:
    # its grounding markers ground nothing and every marker earns `ungrounded_share`
    distrust_implausible: bool = True
    # ... and earns `distrusted_share` where a text that merely observes nothing earns `ungrounded_share`
    distrusted_share: float = 0.25
    # a text whose accuracies for a model all differ by more than this (points) from what the student's
    # own run printed for it contradicts its own work: treated like an implausible number (0: off)
    self_contradiction_pp: float = 0.5
    # a text that gives the model it presents as its result ("our final model") an accuracy above every
    # test accuracy its own run printed by more than this (points) contradicts its own work too (0: off)
    inflated_result_pp: float = 0.2
    claims_points: float = 0.5
    claim_tolerance_pp: float = 0.3
    no_claim_share: float = 0.5
    sole_model_claim_share: float = 1.0  # a claim that the only improved model is the best: nothing was chosen
    reported_difference_pp: float = 1.0
    reported_numbers_points: float = 0.0
    # a sentence crediting one change with an effect ("augmentation gave +0.1 %", "thanks to the dropout")
    # where no two of the student's models differ by that change alone: an effect the work never measured;
    # it earns no marker and the claims part is 0 (false: off). The changes are named with the
    # modifications criterion's vocabulary.
    distrust_unmeasured_attribution: bool = True
    # every section of `sections_points` written (`written_min_words` words at least, however generic):
    # the analysis earns at least this share of the criterion, its sections' words raised to it, unless its
    # numbers are distrusted. The grid asks for these sections; an instructor gives something for writing
    # them even where they observe nothing (0: off).
    written_floor_share: float = 0.3333
    written_min_words: int = 20


@rule("analysis", params=AnalysisParams)
def rule_analysis(ev: Evidence, p: AnalysisParams, t: Translator) -> Verdict:
    """Score the analysis: each section by its words, the best-model claim, the printed numbers."""
    notes = Notes(t, ev)
    unmeasured = _unmeasured_attributions(ev, p, t)
    if unmeasured:
        notes.add(t("rb_ev_unmeasured_attribution", line=excerpt(unmeasured[0], 100)), kind="flag")
    found = _markers_found(ev, p, set(unmeasured))
    implausible = _implausible(ev, notes, t, p) | _self_contradicted(ev, notes, t, p)
    distrusted = implausible and p.distrust_implausible
    # an interpretation resting on an effect never measured (a gain shared out among changes made at once)
    # explains nothing the work showed: interpretations and words count as in a text that observes nothing
    grounded = (
        not distrusted
        and not unmeasured
        and (not p.grounding_markers or any(_grounds(found.get(n), p) for n in p.grounding_markers))
    )
    untrusted_share = _untrusted_share(p, distrusted)
    if distrusted:
        notes.add(t("rb_ev_numbers_distrusted", share=untrusted_share), kind="flag")
    # words that observe nothing (no digit, no number) count like the interpretations: in part
    words_share = 1.0 if grounded else untrusted_share
    if words_share < 1 and any(n in ev.sections for n in p.sections_points):
        notes.add(t("rb_ev_words_ungrounded", share=words_share), kind="flag")
    components = []
    for name, weight in p.sections_points.items():
        share = section_share(ev, notes, t, name, p.min_words) * words_share
        words = ev.sections[name].words if name in ev.sections else 0
        components.append(component(t, f"section_{name}", weight * share, weight, str(words)))

    components += _substance(notes, t, p, found, grounded, distrusted)
    share, agree, disagreement, claim = _claims(ev, notes, t, p)
    if implausible or unmeasured:  # an effect credited to a change never measured alone is a claim too
        share = 0.0
    if _chosen_on_test(ev):  # the best of several looks at the test set: the gains compared are optimistic
        notes.add(t("rb_ev_chosen_on_test"), *ev.validation_on_test.calls[0], "flag")
        share = 0.0
    if ev.never_tested is not None:  # the models compared by validation numbers alone, often their best epoch's
        notes.add(t("rb_ev_never_tested"), *ev.never_tested, "flag")
        share = 0.0
    share *= words_share  # a text that observes nothing has chosen its best model on nothing it shows
    components.append(component(t, "claims", p.claims_points * share, p.claims_points))
    if not distrusted:
        components = _written_floor(ev, notes, t, p, components)

    compared, flagged = _reported_numbers(ev, notes, t, p)
    if p.reported_numbers_points > 0:
        share = 1 - flagged / compared if compared else 1.0
        components.append(
            component(
                t, "reported", p.reported_numbers_points * share, p.reported_numbers_points, ratio(t, flagged, compared)
            )
        )
    written = [
        t("section_" + n)
        for n in p.sections_points
        if n in ev.sections and ev.sections[n].words >= p.min_words and not not_done(ev, n)
    ]
    reason = t(
        "rb_reason_analysis",
        found=len(written),
        total=len(p.sections_points),
        names=t.join(", ", written) if written else "—",
        claim=(
            t("rb_claim_agrees")
            if agree
            else t("rb_claim_disagrees")
            if disagreement
            else t("rb_claim_not_comparable", profile=ev.profile)
            if agree is False
            else t("rb_claim_unchecked")
            if claim is not None
            else t("rb_claim_none")
        ),
    )
    doubts = text_doubts(ev, t, list(p.sections_points)) + model_doubts(ev, t)
    return Verdict(reason, [c for c in components if c.max_points > 0], notes.items, doubts)


def _chosen_on_test(ev: Evidence) -> bool:
    """Whether the test set chose each model's epoch (validation data and a best-epoch callback) and no
    passage of the text says the numbers are biased by it."""
    return ev.validation_on_test.selects and not any(
        rubric_methodology.acknowledged(rubric_text.plain(x.text)) for x in ev.passages
    )


def _written_floor(ev: Evidence, notes: Notes, t: Translator, p: AnalysisParams, components: list) -> list:
    """The parts with the sections' words raised so that the criterion reaches `written_floor_share`, when
    every analysis section is written (`written_min_words`); unchanged otherwise."""
    written = all(
        n in ev.sections and ev.sections[n].words >= p.written_min_words and not not_done(ev, n)
        for n in p.sections_points
    )
    floor = p.written_floor_share * sum(c.max_points for c in components)
    missing = floor - sum(c.points for c in components)
    if not written or missing <= 0:
        return components
    notes.add(t("rb_ev_written_floor", share=p.written_floor_share), kind="found")
    raised = []
    for c in components:
        if c.id.startswith("section_") and missing > 0:
            added = min(missing, c.max_points - c.points)
            missing -= added
            c = component(t, c.id, c.points + added, c.max_points, c.detail)
        raised.append(c)
    return raised


def _grounds(sentence, p: AnalysisParams) -> bool:
    """Whether a grounding marker's sentence observes something (`grounding_evidence`: a number)."""
    return sentence is not None and _observes(sentence.text, p)


def _observes(text: str, p: AnalysisParams) -> bool:
    """Whether a text holds what a grounding marker's sentence needs (`grounding_evidence`)."""
    return (
        not p.grounding_evidence or rubric_text.matches_any(p.grounding_evidence, rubric_text.plain(text)) is not None
    )


def _markers_found(ev: Evidence, p: AnalysisParams, unmeasured: set[str] = frozenset()) -> dict:
    """Marker name -> the first sentence of the student's analysis that shows it; sentences of the
    sections that describe the work (`not_analysis`), a module's function docstrings (they describe the
    code), sentences quoting an implausible accuracy and those crediting a change with an effect never
    measured alone (`unmeasured`) do not count."""
    # a describing section found by its content sits under a heading of the student's own ("MNIST mini
    # project"), whose span may be the whole report: only one its heading names is kept out
    named = {name: s for name, s in ev.sections.items() if s.how != "content" or name not in p.not_analysis}
    section_of = rubric_text.section_ranges(ev.prose, named)
    describing = rubric_text.description_lines(ev.ingest)
    return rubric_substance.earned(
        {name: p.markers.get(name, []) for name in p.substance_points},
        ev.passages,
        lambda passage: (
            section_of(passage.cell, passage.line) not in p.not_analysis
            and (passage.cell, passage.line) not in describing
        ),
        lambda sentence: (
            rubric_text.implausible(sentence, p.plausible_max_accuracy) is None and sentence.strip() not in unmeasured
        ),
        lambda name, sentence: name not in [*p.grounding_markers, *p.self_grounded_markers] or _observes(sentence, p),
    )


# an effect in numbers: "+0.2 %", "-0,15 point", "+0.37" (a hyphen needs its unit: "- 7 -> 2" is a list of confusions)
SIGNED_EFFECT = r"(?:[+−]\d+(?:[.,]\d+)?|-\d+(?:[.,]\d+)?\s?(?:%|pts?\b|points?\b|pp\b))"
# a change credited with it: "BatchNorm gave about +0.2 %", "le dropout apporte +0,15 point"
CREDIT_VERBS = (
    r"(?:gave|gives|brought|brings|adds?|added|contribut\w*|accounts? for|explains?|is responsible for|apport\w*"
    r"|ajout\w*|donn\w*|expliqu\w*|est responsable d\w*)"
)
# ... or in words: "thanks to the augmentation", "c'est grâce au dropout"
CREDITED_TO = r"(?:grace (?:a|au|aux)|thanks to|due to|du (?:a|au|aux)|because of|a cause (?:de|du|des))\s+"


@functools.lru_cache(maxsize=64)
def _credits(word: str) -> re.Pattern:
    """A sentence crediting the change `word` (a vocabulary pattern) names with an effect."""
    return re.compile(
        rf"(?:{word})[^.;:]{{0,40}}?\b{CREDIT_VERBS}\b[^.;]{{0,30}}?(?<![\w.,<>\-]){SIGNED_EFFECT}"
        rf"|\b{CREDITED_TO}(?:[\w'-]+\s+){{0,2}}?[\w-]*(?:{word})"
    )


# an effect on how long training takes ("it is slower (57 s vs 31 s) because of the augmentation"): a cost, not
# the accuracy effect a change is credited with
DURATION = re.compile(
    r"\b(?:slower|faster|quicker|plus (?:lente?s?|rapides?|longs?|courts?)|duree|temps|time|secondes?|seconds?)\b"
)
# a passage that says its changes were made together and cannot be told apart hedges what it credits
CONFOUND_SAID = re.compile(
    r"\b(?:cannot|can't|can not|could not|couldn't|impossible to|unable to|no way to)\s+(?:\w+\s+){0,2}?"
    r"(?:say|tell|know|attribute|separate|isolate|distinguish|disentangle)"
    r"|\bne (?:peux|peut|pouvons|pourrai|pourrais|pouvait)s? pas (?:\w+ ){0,2}?(?:dire|savoir|attribuer|separer|isoler"
    r"|distinguer|demeler)|\bimpossible d[e'] ?(?:dire|savoir|attribuer|separer|isoler|distinguer|demeler)"
    r"|\bconfon(?:d|du|dus|dues)\b|\bconfound"
)


def _unmeasured_attributions(ev: Evidence, p: AnalysisParams, t: Translator) -> list[str]:
    """The analysis's sentences that credit one change (the only category changed by the models that their
    words name) with an effect on accuracy (`_credits`), where no two of the student's models differ by that
    category alone; a passage that says its changes cannot be told apart hedges its own."""
    changed, joint = _measured_only_jointly(ev, t) if p.distrust_unmeasured_attribution else (set(), set())
    vocabulary = {c: words for c, words in _vocabulary(ev).items() if c in changed}
    found = []
    for passage in ev.passages if joint and vocabulary else []:
        if CONFOUND_SAID.search(rubric_text.plain(passage.text)):
            continue
        for sentence in rubric_text.sentences(passage):
            if DURATION.search(rubric_text.plain(sentence)):
                continue
            if any(
                _credits_one(piece, vocabulary, joint)
                for piece in _attribution_pieces(rubric_text.EMPHASIS.sub("", rubric_text.plain(sentence)))
            ):
                found.append(sentence.strip())
    return found


def _attribution_pieces(text: str) -> list[str]:
    """The sentence, and where it shares a gain out in numbers (two signed effects or more: "BatchNorm gave
    +0.3 %, the rotations +0.1 %"), each of its clauses: each credits its own change."""
    if len(re.findall(SIGNED_EFFECT, text)) < 2:
        return [text]
    return [text, *re.split(r"[,;]\s+", text)]


def _credits_one(text: str, vocabulary: dict[str, list[str]], joint: set[str]) -> bool:
    """Whether `text` names one category of change only, one never measured alone (`joint`), and credits it."""
    named = {c for c, words in vocabulary.items() if rubric_text.matches_any(words, text) is not None}
    return len(named) == 1 and named <= joint and any(_credits(w).search(text) for w in vocabulary[min(named)])


def _measured_only_jointly(ev: Evidence, t: Translator) -> tuple[set[str], set[str]]:
    """(the categories the student's models (their baseline, else the reference, and the improved ones)
    change between some two of them, those of them never changed alone)."""
    models = [m for m in ev.models if m.spec is not None]
    if not any(m.role == "baseline" for m in models) and ev.reference is not None and ev.reference.spec is not None:
        models.append(ev.reference)
    found = [ev.features(m) for m in models]
    changed, alone = set(), set()
    for i, new in enumerate(found):
        for old in found[:i]:
            categories = set(rubric_models.grouped(rubric_models.changes(new, old, t)))
            changed |= categories
            alone |= categories if len(categories) == 1 else set()
    return changed, changed - alone


def _vocabulary(ev: Evidence) -> dict[str, list[str]]:
    """The words that name each category of change: the modifications criterion's."""
    criterion = next((c for c in ev.rubric.criteria if c.rule == "modifications"), None)
    return criterion.params.get("vocabulary", {}) if criterion is not None else {}


def _substance(
    notes: Notes, t: Translator, p: AnalysisParams, found: dict, grounded: bool, distrusted: bool = False
) -> list:
    """One part per marker of substance (`substance_points`), earned by the sentence `found` for it,
    quoted with where it is; without a grounding marker, the others earn `ungrounded_share`, and
    every marker does in a text `distrusted` for its implausible numbers, and an observation marker does
    when its own sentence holds no evidence ("confond le 4 et le 9" names a pattern and counts nothing)."""
    parts = []
    for name, weight in p.substance_points.items():
        sentence = found.get(name)
        # an observation stands on its own evidence (a count, a percentage); an interpretation on any observation
        trusted = (_grounds(sentence, p) and not distrusted) if name in p.grounding_markers else grounded
        if name in p.self_grounded_markers:  # "because it is bigger" explains nothing its sentence observed
            trusted = trusted and _grounds(sentence, p)
        share = 1.0 if trusted else _untrusted_share(p, distrusted)
        if sentence is not None:
            notes.add(
                t("rb_ev_substance", what=t(f"rb_marker_{name}"), excerpt=excerpt(sentence.text)),
                sentence.cell,
                sentence.line,
                "found",
            )
            if share < 1:
                notes.add(t("rb_ev_substance_ungrounded", what=t(f"rb_marker_{name}"), share=share), kind="flag")
        else:
            notes.add(t("rb_ev_substance_missing", what=t(f"rb_marker_{name}")), kind="missing")
        parts.append(component(t, f"marker_{name}", weight * share if sentence else 0.0, weight))
    return parts


def _untrusted_share(p: AnalysisParams, distrusted: bool) -> float:
    """What an untrusted part earns: less in a text its own numbers discredit than in one that observes nothing."""
    return p.distrusted_share if distrusted else p.ungrounded_share


def numbers_untrusted(ev: Evidence, p: AnalysisParams, t: Translator) -> bool:
    """Whether the text's numbers cannot be what was measured: an implausible accuracy, or one the
    student's own run contradicts (what the analysis distrusts; the documentation pays for it too)."""
    scratch = Notes(t, ev)  # the analysis notes where they are; here only the answer counts
    return _implausible(ev, scratch, t, p) | _self_contradicted(ev, scratch, t, p)


def _implausible(ev: Evidence, notes: Notes, t: Translator, p: AnalysisParams) -> bool:
    """Whether the text or the saved outputs quote an accuracy beyond `plausible_max_accuracy`:
    a number that cannot be what the model measured, whatever the profile; noted where it is."""
    printed = [(r.text, r.cell, None) for r in ev.reported]
    quoted = [(text, x.cell, x.line) for x, text in zip(ev.passages, rubric_text.headed(ev.passages), strict=True)]
    for text, cell, line in printed + quoted:
        number = rubric_text.implausible(text, p.plausible_max_accuracy)
        if number is not None:
            limit = 100 * p.plausible_max_accuracy
            notes.add(t("rb_ev_implausible", number=number, limit=limit, line=excerpt(text, 80)), cell, line, "flag")
            return True
    return False


def _label(t: Translator, name: str) -> str:
    """A model's name as the evidence says it: the reference by its label."""
    return t("rb_reference_label") if name == "reference" else name


def _self_contradicted(ev: Evidence, notes: Notes, t: Translator, p: AnalysisParams) -> bool:
    """Whether the text quotes, for a model, only accuracies further than `self_contradiction_pp` from what
    the student's own run printed for it, gives the model it presents as its result an accuracy above all
    its run printed (`inflated_result_pp`), or calls best a model its run shows worse: numbers the
    student's own work contradicts, on every profile."""
    found = ev.contradicted(p.self_contradiction_pp)
    inflated = rubric_text.inflated_results(ev.ingest, ev.clean_passages, p.inflated_result_pp)[:1]  # one says why
    for key, pairs in (("rb_ev_self_contradicted", found), ("rb_ev_inflated", inflated)):
        for said, own in pairs:
            notes.add(
                t(
                    key,
                    model=_label(t, said.model),
                    quoted=said.accuracy,
                    printed=own.accuracy,
                    line=excerpt(said.text, 80),
                    output=excerpt(own.text, 60),
                ),
                said.cell,
                kind="flag",
            )
    return bool(found) | bool(inflated) | _claim_self_contradicted(ev, notes, t, p)


def _claim_self_contradicted(ev: Evidence, notes: Notes, t: Translator, p: AnalysisParams) -> bool:
    """Whether the model the text calls best is, by more than `self_contradiction_pp` points, below
    another improved model, or the reference itself, in what the student's own run printed (their saved
    outputs): a "best model" or an "improvement" the student's own numbers show worse."""
    if not p.self_contradiction_pp:
        return False
    printed = {r.model: r for r in ev.reported}
    claim = rubric_text.claimed_best(ev.best_claims)
    if claim is None or claim.model not in printed or claim.model == "reference":
        return False
    best = max(printed.values(), key=lambda r: r.accuracy)
    if 100 * (best.accuracy - printed[claim.model].accuracy) <= p.self_contradiction_pp:
        return False
    notes.add(
        t(
            "rb_ev_claim_self_contradicted",
            model=claim.model,
            sentence=excerpt(claim.sentence, 80),
            best=_label(t, best.model),
            best_acc=best.accuracy,
            acc=printed[claim.model].accuracy,
        ),
        claim.cell,
        claim.line,
        "flag",
    )
    return True


def _claims(
    ev: Evidence, notes: Notes, t: Translator, p: AnalysisParams
) -> tuple[float, bool | None, bool | None, rubric_text.Claim | None]:
    """The model the text calls best against the harness's best improved model. Returns (the
    part's share, whether they agree (None: not checked), whether the disagreement counts (on a
    comparable profile), the claim)."""
    trained = {m.name: m.test_accuracy for m in ev.models if m.role == "improved" and m.test_accuracy is not None}
    measured = max(trained, key=trained.get) if trained else None
    claims = ev.best_claims
    claim = rubric_text.claimed_best(claims)
    for other in claims:
        if other is not claim:
            notes.add(
                t("rb_ev_claim_other", model=other.model, sentence=excerpt(other.sentence)), other.cell, other.line
            )
    agree = disagreement = None
    if not any(f.role == "improved" for f in ev.ingest.factories):
        share = 0.0
        notes.add(t("rb_ev_no_improved_claim"), kind="missing")
    elif claim is None:
        conclusion = ev.sections.get("conclusion")
        share = p.no_claim_share if conclusion is not None and conclusion.words > 0 else 0.0
        notes.add(t("rb_ev_no_claim"), kind="missing")
    elif measured is None or trained.get(claim.model) is None:
        share = p.no_claim_share
        notes.add(
            t("rb_ev_claim_unmeasured", model=claim.model, sentence=excerpt(claim.sentence)), claim.cell, claim.line
        )
    else:
        gap = 100 * (trained[measured] - trained[claim.model])
        agree = claim.model == measured or at_most(gap, p.claim_tolerance_pp)
        text = t(
            "rb_ev_claim",
            model=claim.model,
            sentence=excerpt(claim.sentence),
            measured=measured,
            acc=trained[measured],
            claimed_acc=trained[claim.model],
            profile=ev.profile,
        )
        if claim.model == measured:
            share = 1.0 if len(trained) > 1 else p.sole_model_claim_share
            notes.add(
                t(
                    "rb_ev_claim_same" if len(trained) > 1 else "rb_ev_claim_sole",
                    model=claim.model,
                    sentence=excerpt(claim.sentence),
                    acc=trained[measured],
                    profile=ev.profile,
                ),
                claim.cell,
                claim.line,
                "found",
            )
        elif agree:
            share = 1.0
            notes.add(text + t("rb_ev_claim_agrees"), claim.cell, claim.line, "found")
        elif ev.comparable:
            share, disagreement = 0.0, True
            notes.add(text + t("rb_ev_claim_disagrees", gap=gap), claim.cell, claim.line, "flag")
        else:
            share = 1.0
            notes.add(text + t("rb_ev_claim_not_comparable", gap=gap), claim.cell, claim.line)
    return share, agree, disagreement, claim


def _reported_numbers(ev: Evidence, notes: Notes, t: Translator, p: AnalysisParams) -> tuple[int, int]:
    """Accuracies the student printed, against the harness's: flagged when they differ by more
    than `reported_difference_pp` on a comparable profile. Returns (compared, flagged)."""
    last: dict[str, rubric_text.Reported] = {}
    for reported in ev.reported:
        last[reported.model] = reported
    # numbers the text quotes are held against the measurements like printed ones; a printed
    # number (the student's run) stands first when both exist
    labels = rubric_text.improved_labels(ev.ingest)
    for quoted in rubric_text.quoted_accuracies(ev.passages, ev.ingest.factories, ev.ingest.own_names, labels):
        last.setdefault(quoted.model, quoted)
    compared = flagged = 0
    for name, reported in last.items():
        measured = ev.accuracy(name)
        if measured is None:
            continue
        compared += 1
        label = _label(t, name)
        diff = 100 * (reported.accuracy - measured)
        text = t(
            "rb_ev_reported",
            model=label,
            reported=reported.accuracy,
            measured=measured,
            diff=diff,
            line=excerpt(reported.text, 80),
            profile=ev.profile,
        )
        if not ev.comparable:
            notes.add(text + t("rb_ev_reported_not_comparable"), reported.cell)
        elif beyond(abs(diff), p.reported_difference_pp):
            flagged += 1
            notes.add(
                text + t("rb_ev_reported_differs", limit=float(p.reported_difference_pp)), reported.cell, kind="flag"
            )
        else:
            notes.add(text, reported.cell, kind="found")
    return compared, flagged
