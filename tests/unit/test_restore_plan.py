"""How a parallel restore shares out the archive's entries (pure logic: no database)."""

from __future__ import annotations

from ansible_collections.diagnosticpro.dr.plugins.module_utils._restore import _entry_table, share_out

SIZES = {"public.big": 900, "public.mid": 500, "public.small": 300, "public.tiny": 100, "public.empty": 0}


def test_tables_are_shared_out_by_size_largest_first():
    groups = share_out(sorted(SIZES), SIZES, 2)
    assert groups == [["public.big", "public.empty"], ["public.mid", "public.small", "public.tiny"]]
    loads = [sum(SIZES[t] for t in g) for g in groups]
    assert max(loads) - min(loads) <= 100


def test_no_empty_groups_when_there_are_more_jobs_than_tables():
    assert share_out(["public.a"], {}, 4) == [["public.a"]]
    assert share_out([], {}, 2) == []


def test_entries_are_tied_to_their_table():
    indexes = {("public", "big_created_idx"): "public.big"}
    assert _entry_table("3433; 0 16386 TABLE DATA public big postgres", indexes) == "public.big"
    assert _entry_table("3254; 2606 18175 CONSTRAINT public big big_pkey postgres", indexes) == "public.big"
    assert _entry_table("3255; 1259 18189 INDEX public big_created_idx postgres", indexes) == "public.big"
    # Unknown index, foreign key, trigger, sequence value: after every table is complete.
    assert _entry_table("3256; 1259 18190 INDEX public other_idx postgres", indexes) is None
    assert _entry_table("3290; 2606 18200 FK CONSTRAINT public big big_fk postgres", indexes) is None
    assert _entry_table("3291; 2620 18201 TRIGGER public big touch postgres", indexes) is None
    assert _entry_table("3453; 0 0 SEQUENCE SET public big_id_seq postgres", indexes) is None
