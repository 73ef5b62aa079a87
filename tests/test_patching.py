"""The one class-patch registry of the integrations (runstore/_integrations/_patching.py):
TensorBoard sync and gym videos both follow these rules."""

from __future__ import annotations

from runstore._integrations._patching import ClassPatches


def _recording(original, serving):
    """Our wrapper: the original's result, and the argument to the run served."""
    def write(self, value):
        result = original(self, value)
        served = serving()
        if served is not None:
            served.append(value)
        return result

    return write


def _classes():
    class Writer:
        def write(self, value):
            """Write a value."""
            return ("written", value)

    class Subclass(Writer):  # inherits write
        pass

    return Writer, Subclass


def test_unpatch_puts_back_exactly_what_the_class_held():
    Writer, Subclass = _classes()
    original = Writer.__dict__["write"]
    patches: ClassPatches[list] = ClassPatches()
    run: list = []
    patches.add(run, [(Subclass, "write", _recording), (Writer, "write", _recording)])
    assert patches.active() and patches.is_ours(Writer.write) and patches.is_ours(Subclass.write)
    assert Writer.write.__wrapped__ is original and Writer.write.__doc__ == "Write a value."
    assert Subclass().write(1) == ("written", 1) and Writer().write(2) == ("written", 2)
    assert run == [1, 2]  # each call reaches the run once
    assert patches.remove(run)
    assert Writer.__dict__["write"] is original
    assert "write" not in Subclass.__dict__  # inherited before: inherited again
    assert not patches.active() and not patches.is_ours(Writer.write)
    assert not patches.remove(run)  # not served any more


def test_a_method_inherited_from_a_patched_class_is_not_wrapped_twice():
    Writer, Subclass = _classes()
    patches: ClassPatches[list] = ClassPatches()
    run: list = []
    patches.add(run, [(Writer, "write", _recording), (Subclass, "write", _recording)])
    assert "write" not in Subclass.__dict__
    Subclass().write(1)
    assert run == [1]
    patches.remove(run)


def test_a_patch_on_top_of_ours_is_left_and_ours_then_serves_no_run():
    Writer, _ = _classes()
    patches: ClassPatches[list] = ClassPatches()
    first: list = []
    patches.add(first, [(Writer, "write", _recording)])
    ours = Writer.write

    def theirs(self, value):  # another library wraps our wrapper
        return ours(self, value)

    Writer.write = theirs
    patches.remove(first)
    assert Writer.__dict__["write"] is theirs  # not put back over theirs
    Writer().write(1)
    assert first == []  # ours, still called by theirs, serves nobody now
    second: list = []
    patches.add(second, [(Writer, "write", _recording)])  # wraps theirs
    Writer().write(2)
    assert second == [2]  # once: the old wrapper below theirs stays silent
    patches.remove(second)
    assert Writer.__dict__["write"] is theirs


def test_the_newest_run_is_served_and_the_last_one_out_unpatches():
    Writer, _ = _classes()
    original = Writer.write
    patches: ClassPatches[list] = ClassPatches()
    outer: list = []
    inner: list = []
    patches.add(outer, [(Writer, "write", _recording)])
    patches.add(inner, [(Writer, "write", _recording)])  # joins; no second patch
    Writer().write(1)
    assert patches.remove(inner)
    assert patches.active()  # outer still served
    Writer().write(2)
    assert patches.remove(outer)
    assert Writer.write is original
    Writer().write(3)
    assert (outer, inner) == ([2], [1])
