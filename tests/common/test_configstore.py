"""The config store keeps the last good snapshot and picks up every kind of file change."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

from meshguard.common.configstore import ConfigStore
from meshguard.common.findings import FindingsError, error
from meshguard.common.sources import SourceFile


def compile_limits(files: list[SourceFile]) -> dict[str, int]:
    """A tiny compiler: every file maps names to positive ints."""
    merged: dict[str, int] = {}
    for f in files:
        data = yaml.safe_load(f.text) or {}
        for name, value in data.items():
            if not isinstance(value, int) or value <= 0:
                raise FindingsError([error(name, "must be a positive integer").located(f.path, 0)])
            merged[name] = value
    return merged


def errors_metric(store: str) -> float:
    value = REGISTRY.get_sample_value("meshguard_config_load_errors_total", {"store": store})
    return value or 0.0


def write(path: Path, text: str) -> None:
    """Atomic replace, as editors and kubelet do, with a fresh inode each time."""
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_bad_file_never_replaces_good_snapshot(tmp_path: Path) -> None:
    cfg = tmp_path / "limits.yaml"
    write(cfg, "a: 1\n")
    store = ConfigStore("t-bad", [tmp_path], compile_limits)
    first = store.load()
    assert first.value == {"a": 1}

    before = errors_metric("t-bad")
    write(cfg, "a: -5\n")
    assert store.reload_if_changed() is False
    assert store.current is first
    assert errors_metric("t-bad") == before + 1

    write(cfg, "a: 7\n")
    assert store.reload_if_changed() is True
    assert store.current.value == {"a": 7}
    assert store.current.version != first.version


def test_compiler_crash_keeps_serving_the_last_good_snapshot(tmp_path: Path) -> None:
    cfg = tmp_path / "limits.yaml"
    write(cfg, "a: 1\n")
    store = ConfigStore("t-yaml", [tmp_path], compile_limits)
    first = store.load()
    before = errors_metric("t-yaml")
    write(cfg, "a: [\n")  # the toy compiler lets yaml.YAMLError escape
    assert store.reload_if_changed() is False
    assert store.current is first
    assert errors_metric("t-yaml") == before + 1


def test_first_load_fails_fast(tmp_path: Path) -> None:
    (tmp_path / "limits.yaml").write_text("a: 0\n")
    store = ConfigStore("t-fast", [tmp_path], compile_limits)
    with pytest.raises(FindingsError) as exc:
        store.load()
    assert "limits.yaml:0:a: error: must be a positive integer" in str(exc.value)
    assert not store.loaded


def test_configmap_symlink_swap_is_picked_up(tmp_path: Path) -> None:
    """Kubelet's layout: file -> ..data/file, ..data -> ..<timestamp>; update swaps ..data."""
    mount = tmp_path / "mount"
    mount.mkdir()
    v1 = mount / "..2026_01_01_v1"
    v1.mkdir()
    (v1 / "limits.yaml").write_text("a: 1\n")
    (mount / "..data").symlink_to(v1.name)
    (mount / "limits.yaml").symlink_to("..data/limits.yaml")

    store = ConfigStore("t-cm", [mount], compile_limits)
    snap = store.load()
    assert snap.value == {"a": 1}
    assert snap.files == (str(mount / "limits.yaml"),), "dot entries must not load twice"

    v2 = mount / "..2026_01_01_v2"
    v2.mkdir()
    (v2 / "limits.yaml").write_text("a: 2\n")
    tmp_link = mount / "..data_tmp"
    tmp_link.symlink_to(v2.name)
    os.replace(tmp_link, mount / "..data")
    assert store.reload_if_changed() is True
    assert store.current.value == {"a": 2}


def test_explicit_files_and_new_files_in_directories(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "one.yaml").write_text("a: 1\n")
    extra = tmp_path / "extra.conf"
    extra.write_text("b: 2\n")
    store = ConfigStore("t-files", [d, extra], compile_limits)
    assert store.load().value == {"a": 1, "b": 2}
    (d / "two.yml").write_text("c: 3\n")
    (d / "ignored.txt").write_text("not: yaml: at all\n")
    assert store.reload_if_changed() is True
    assert store.current.value == {"a": 1, "b": 2, "c": 3}


def test_missing_path_is_an_error_not_an_empty_config(tmp_path: Path) -> None:
    store = ConfigStore("t-missing", [tmp_path / "nope"], compile_limits)
    with pytest.raises(FindingsError, match="no such file"):
        store.load()


def test_listeners_see_each_new_snapshot(tmp_path: Path) -> None:
    cfg = tmp_path / "limits.yaml"
    write(cfg, "a: 1\n")
    store = ConfigStore("t-listen", [cfg], compile_limits)
    seen: list[str] = []
    store.on_swap(lambda s: seen.append(s.version))
    store.load()
    write(cfg, "a: 2\n")
    store.reload_if_changed()
    assert len(seen) == 2 and seen[0] != seen[1]


async def test_watch_applies_changes_within_a_second(tmp_path: Path) -> None:
    cfg = tmp_path / "limits.yaml"
    write(cfg, "a: 1\n")
    store = ConfigStore("t-watch", [tmp_path], compile_limits, poll_interval=0.05)
    store.load()
    task = asyncio.create_task(store.watch())
    try:
        write(cfg, "a: 3\n")
        for _ in range(100):
            if store.current.value == {"a": 3}:
                break
            await asyncio.sleep(0.01)
        assert store.current.value == {"a": 3}
    finally:
        task.cancel()
