"""Step captions that are true for the era being drawn.

A scenario's step texts are written for one kernel, :data:`REFERENCE_ERA`
(6.18, the kernel the kit is checked against).  Under another era a step
can take other decisions: under 5.7 the parent of ``vmsplice_child``
*reuses* the page the pipe still holds, where 6.18 copies it.  So a
caption is chosen per era:

1. the step's own text when the step, run under the era drawn, decides
   exactly what it decides under the reference era (same kernel decisions,
   same outcome, same counters of the watched pages), the functions the
   text names took decisions there too, and the text speaks of MM-ID
   tracking only where the era has it: the text is as true as it is for
   6.18;
2. else a text written for that era, when :data:`VARIANTS` has one;
3. else the era's own decisions, read from its trace ("in era 5.7:
   reuse_swap_page: reuse · do_wp_page: reuse ..."), followed by the
   reference text marked as such.

Examples
--------
>>> from mmkit.viz import Playback
>>> from mmkit.viz.captions import step_text
>>> pb = Playback("vmsplice_child", era="5.7")
>>> pb.goto(5)
>>> text, how = step_text(pb)
>>> how, "reuses" in text, "copies" in text
('variant', True, False)
>>> pb618 = Playback("vmsplice_child", era="6.18")
>>> pb618.goto(5)
>>> step_text(pb618)[1]
'reference'
"""

import re

from ..era import DEFAULT_ERA, era as _era

__all__ = ["REFERENCE_ERA", "VARIANTS", "step_text", "signature"]

#: The era the scenarios' own step texts describe.
REFERENCE_ERA = DEFAULT_ERA

#: (scenario name, step number from 1, step name) -> {era name: the step's
#: text under that era}.  Used only when the step decides differently there
#: than under :data:`REFERENCE_ERA` (a test checks each against the era's
#: trace); the name guards against a step list that changed.
VARIANTS = {
    ("vmsplice_child", 5, "parent writes"): {
        "5.7": "mapcount 1: 5.7's do_wp_page() asks reuse_swap_page(), which counts mappings only, and reuses "
               "the page in place -- the page the pipe still holds (CVE-2020-29374).",
        "5.8": "mapcount 1 and refcount 1: 5.8's vmsplice() had already broken COW in the child (GUP with "
               "FOLL_WRITE), so the pipe holds the child's copy and the parent reuses its own page in place.",
    },
    # before v6.12 (b1f202060afe) a split kept every mapped subpage (era rule split_remaps_zero)
    ("thp_partial_unmap", 3, "shrinker"): dict.fromkeys(("5.7", "5.8", "5.9", "5.19", "6.2"), (
        "deferred_split_scan() -> split_huge_page(): 4 KiB folios; the 256 unmapped pages are freed, the 256 "
        "mapped ones are kept, page 100 too although it holds only zeros (the zero-page remap came in v6.12).")),
    # the text names copy_present_ptes(); the older eras share the page in the function their trace names
    ("fork", 2, "fork"): {
        **dict.fromkeys(("5.7", "5.8"), "copy_one_pte() shares the page: refcount 2, mapcount 2, both PTEs "
                                         "read-only."),
        **dict.fromkeys(("5.9", "5.19", "6.2"), "copy_present_pte() shares the page: refcount 2, mapcount 2, "
                                                 "both PTEs read-only."),
    },
    # thp_fork_cow: before v6.15 no MM IDs (Era.mm_id) and another large-folio reuse rule (Era.large_reuse)
    ("thp_fork_cow", 4, "parent writes J"): {
        "5.8": "The child still maps the folio: the parent's PMD is split and, as reuse_swap_page() finds pages "
               "of the folio mapped twice (up to v5.8 a page is reused only if none is), J is copied.",
        **dict.fromkeys(("5.9", "5.19", "6.2"), (
            "The child still maps the folio: the parent's PMD is split and J is copied: do_wp_page() reuses only "
            "a folio whose refcount is 1 (v5.9, 09854ba94c6a), and this one counts both processes' mappings.")),
    },
    ("thp_fork_cow", 5, "child exits"): dict.fromkeys(("5.8", "5.9", "5.19", "6.2"), (
        "Only the parent maps the folio now (no MM-ID slots before v6.15: the folio does not record which mm "
        "maps it).")),
    ("thp_fork_cow", 6, "parent writes K"): {
        "5.8": "reuse_swap_page() (the rule up to v5.8): no page of the folio is mapped more than once now, so K "
               "is reused in place (no PageAnonExclusive before v5.19).",
        **dict.fromkeys(("5.9", "5.19", "6.2"), (
            "do_wp_page() reuses a page only at refcount 1 (v5.9, 09854ba94c6a): the folio's refcount counts "
            "the parent's other 510 mappings, so K is copied although only the parent maps the folio (v6.15 "
            "reuses it, with MM IDs).")),
    },
    ("thp_partial_unmap", 4, "write page 100"): dict.fromkeys(("5.7", "5.8", "5.9", "5.19", "6.2"), (
        "Page 100 kept its own 4 KiB page behind a writable PTE: the store takes no fault.")),
}


#: Words of a step text that describe MM-ID tracking (v6.15,
#: folio_maybe_mapped_shared()): such a text is not true of an era without it.
_MM_ID_WORDS = re.compile(r"maybe (mapped )?shared|MM[- ]IDs?\b|MM slot|_mm_id", re.I)


def signature(result, events, era=None):
    """What a step did, for comparing eras: its outcome, the decisions of
    its trace in order, the functions the step's text names that took one,
    whether the text speaks of MM-ID tracking that ``era`` (default: the
    reference era) lacks, and the watched pages' present / writable / r / m /
    p (PageAnonExclusive left out: eras before 5.19 have no such flag)."""
    from ..scenario import format_outcome
    pages = tuple(sorted((label, None if info is None or not info.present else
                          (info.writable, info.zero_page, info.refcount, info.mapcount, info.pincount))
                         for label, info in result.pages.items()))
    # the functions the step's text names that decided something here: a
    # text citing v6.15's __wp_can_reuse_large_anon_folio() is not true of
    # an era where reuse_swap_page() took the same decision
    named = set(re.findall(r"([A-Za-z_]\w*)\(\)", result.step.explain or ""))
    cited = tuple(sorted(named & {e.func for e in events if e.decision}))
    no_mm_id = bool(_MM_ID_WORDS.search(result.step.explain or "")) and not _era(era or REFERENCE_ERA).mm_id
    return (format_outcome(result.outcome), tuple(e.decision for e in events if e.decision), pages, cited, no_mm_id)


def _events(log):
    return [e for _, evs in log for e in evs]


def _reference(pb):
    """The reference era's signature of every step of ``pb``'s scenario
    (computed once per Playback, on a scratch run)."""
    ref = getattr(pb, "_reference_sigs", None)
    if ref is None:
        from .playback import Playback
        run = Playback(pb.scenario, REFERENCE_ERA, pb.graph_options)
        ref = []
        for _ in range(len(run)):
            try:
                run.step()
            except Exception:          # a broken hand-written step: no reference beyond it
                break
            ref.append(signature(run.results[-1], _events(run.logs[-1]), REFERENCE_ERA))
        pb._reference_sigs = ref
    return ref


def step_text(pb, index=None, long=False):
    """(text, how) for step ``index`` (default: the last one done) of
    Playback ``pb``: how is ``"reference"`` (the step's own text holds for
    this era), ``"variant"`` (a text written for this era) or ``"trace"``
    (this era's decisions); ``long`` adds the reference text after a trace
    caption."""
    index = pb.index - 1 if index is None else index
    r = pb.results[index]
    own = r.step.explain
    if _era(pb.era).name == _era(REFERENCE_ERA).name:
        return own, "reference"
    ref = _reference(pb)
    events = _events(pb.logs[index])
    if index < len(ref) and ref[index] == signature(r, events, pb.era):
        return own, "reference"
    variant = VARIANTS.get((pb.scenario.name, index + 1, r.step.name), {}).get(pb.era.name)
    if variant:
        return variant, "variant"
    decided = [e for e in events if e.decision]
    if decided:
        text = f"In era {pb.era.name}: " + " · ".join(f"{e.func}: {e.decision}" for e in decided[:4])
        if len(decided) > 4:
            text += f" · … ({len(decided) - 4} more)"
    else:
        text = f"In era {pb.era.name} this step takes no kernel decision."
    if long:
        text += f" ({REFERENCE_ERA}'s text, which this era's state may not match: {own})"
    return text, "trace"
