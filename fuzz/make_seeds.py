#!/usr/bin/env python3
"""Writes the hand-made seeds of fuzz/corpus/ (standard library only).

    python3 fuzz/make_seeds.py

The manifests are canonical (compact JSON, fields in schema order), and the
archives hold them with files whose SHA-256 and size match, unsigned, so
fuzzing starts past the parsers' first refusals. tests/replay.rs checks that
the ones meant to be valid still are; when the manifest schema changes,
change it here and run this again. Output is deterministic (mtimes 0).
Inputs the fuzzer adds (scripts/fuzz --grow-corpus) are not made here.
"""
import base64
import gzip
import hashlib
import io
import json
import os
import tarfile
import zipfile

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def dump(obj):
    """Compact JSON, keys in the order given: serde_json's output."""
    return json.dumps(obj, separators=(",", ":")).encode()


def write(target, name, data):
    folder = os.path.join(root, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as file:
        file.write(data)


RETRY = {"max_attempts": 1, "backoff": "fixed", "delay_ms": 1000, "jitter": False, "condition": "retryable"}
def task(id, deps=(), **extra):
    """A task declaration, fields in schema order, empty optional ones left out."""
    t = {"id": id}
    if extra.get("description"): t["description"] = extra["description"]
    t["dependencies"] = list(deps)
    t["retry"] = extra.get("retry", RETRY)
    if "timeout_ms" in extra: t["timeout_ms"] = extra["timeout_ms"]
    if "invokes" in extra: t["invokes"] = extra["invokes"]
    return t
def decl(tasks, workflows, cron=(), triggers=(), graphs=(), invoked=()):
    d = {"tasks": tasks, "workflows": workflows, "cron_schedules": list(cron),
         "triggers": list(triggers), "computation_graphs": list(graphs)}
    if invoked: d["invoked_graphs"] = list(invoked)
    return d
def manifest(name, artifacts, declaration, description=""):
    return {"format_version": 1, "package": {"name": name, "version": "1.2.3", "description": description},
            "abi_version": "1.0", "artifacts": artifacts, "declaration": declaration}
def artifact(path, kind, content):
    return {"path": path, "kind": kind, "sha256": hashlib.sha256(content).hexdigest(), "size": len(content)}

WASM = b"\x00asm\x01\x00\x00\x00"
SO = b"\x7fELF not really a library"

minimal = manifest("hello", [artifact("wasm/hello.wasm", "wasm", WASM)],
                   decl([task("greet")], [{"name": "hello", "tasks": ["greet"]}]))

etl = manifest("etl",
    [artifact("native/x86_64-unknown-linux-gnu/libetl.so", {"native": {"target": "x86_64-unknown-linux-gnu"}}, SO)],
    decl([task("extract", timeout_ms=30000),
          task("transform", ["extract"], description="clean rows",
               retry={"max_attempts": 3, "backoff": "exponential", "delay_ms": 500, "max_delay_ms": 8000,
                      "jitter": True, "condition": "timeout"}),
          task("load", ["transform"])],
         [{"name": "etl", "description": "extract, transform, load", "tasks": ["extract", "transform", "load"]}],
         cron=[{"name": "nightly", "workflow": "etl", "expression": "0 2 * * *", "timezone": "Europe/Paris",
                "catch_up": {"run_missed": {"max_runs": 3}}},
               {"name": "hourly", "workflow": "etl", "expression": "0 * * * *", "timezone": "UTC", "catch_up": "skip"}],
         triggers=[{"name": "inbox", "workflow": "etl", "poll_interval_ms": 5000, "allow_concurrent": False}]),
    description="sample")

graphs = manifest("alerts", [artifact("wasm/alerts.wasm", "wasm", WASM)],
    decl([task("ingest"), task("enrich", ["ingest"], invokes="enrichment"), task("poll"),
          task("decide"), task("alert"), task("calm"), task("lookup")],
         [{"name": "pipeline", "tasks": ["ingest", "enrich"]}],
         graphs=[{"name": "watch", "description": "route readings",
                  "accumulators": [{"name": "events", "kind": "stream"},
                                   {"name": "poll", "kind": "polling", "poll_interval_ms": 1000},
                                   {"name": "batch", "kind": "batch", "flush_interval_ms": 500, "max_buffer_size": 10},
                                   {"name": "raw", "kind": "passthrough"},
                                   {"name": "recent", "kind": "state", "capacity": 5, "feed": "decide"}],
                  "reactor": {"reaction_mode": "when_all", "input_strategy": "sequential", "sources": ["events", "batch"]},
                  "nodes": [{"id": "alert", "inputs": ["decide.high"]},
                            {"id": "calm", "inputs": ["decide.low", "raw"]},
                            {"id": "decide", "inputs": ["events", "recent", "poll"]}],
                  "subscriptions": [{"workflow": "pipeline"}]},
                 {"name": "simple", "accumulators": [{"name": "ticks", "kind": "passthrough"}],
                  "reactor": {"reaction_mode": "when_any", "input_strategy": "latest"},
                  "nodes": [{"id": "decide", "inputs": ["ticks"]}]}],
         invoked=[{"name": "enrichment", "inputs": ["order"], "nodes": [{"id": "lookup", "inputs": ["order"]}]}]))

for name, m in [("minimal.json", minimal), ("etl-native-cron-trigger.json", etl), ("graphs.json", graphs)]:
    write("parse_manifest", name, dump(m))
# Valid but not canonical (re-spelt): parses, refused as canonical.
write("parse_manifest", "etl-pretty.json", json.dumps(etl, indent=2).encode())
# A future format: refused before the schema is looked at.
write("parse_manifest", "format-2.json", b'{"format_version":2,"anything":true}')

# Archives: the same manifests with their files, unsigned, as the pack tool
# lays them out (gzip'd tar), and one as zip.
def tar_gz(files, dirs=()):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path in dirs:
            info = tarfile.TarInfo(path)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        for path, data in files:
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()
def zip_of(files):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in files:
            info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return out.getvalue()

write("read_archive", "minimal.tar.gz", tar_gz([("manifest.json", dump(minimal)), ("wasm/hello.wasm", WASM)]))
write("read_archive", "etl-dirs.tar.gz", tar_gz([("manifest.json", dump(etl)),
                                                 ("native/x86_64-unknown-linux-gnu/libetl.so", SO)],
                                                dirs=["native/", "native/x86_64-unknown-linux-gnu/"]))
write("read_archive", "graphs.zip", zip_of([("manifest.json", dump(graphs)), ("wasm/alerts.wasm", WASM)]))
# A file the manifest does not list: reads, then fails verification.
write("read_archive", "unlisted-file.tar.gz", tar_gz([("manifest.json", dump(minimal)), ("wasm/hello.wasm", WASM),
                                                      ("notes.txt", b"not listed")]))

# Context merge: JSON values one after the other, taken as results in order.
contexts = {
    "nested-objects.json": b'{"a":1,"nested":{"x":1,"y":1},"list":[1]}\n{"b":2,"nested":{"y":2},"list":[2,3]}\n',
    "scalar-then-object.json": b'{"k":5,"keep":true}\n{"k":{"y":2}}\n{"k":7}\n',
    "null-output.json": b'{"in":1}\nnull\n',
    "not-objects.json": b'[1,2]\n"text"\n31.05\n[2,[3]]\n',
    "arrays-to-unite.json": b'{"seen":["in","a"],"deep":{"l":[1]}}\n{"seen":["in","b","b"],"deep":{"l":[2,1]}}\n{"seen":["c"]}\n',
    "deep.json": b'{"a":{"b":{"c":{"d":[1,{"e":null}]}}}}\n{"a":{"b":{"c":{"d":true,"f":{}}}}}\n',
    "numbers.json": b'{"n":1e300,"m":-0.0,"big":18446744073709551615}\n{"n":0.1,"m":-9223372036854775808,"u":"\\u00e9\\ud83d\\ude00"}\n',
}
for name, data in contexts.items():
    write("merge_context", name, data)

# Frames: one per frame type of each socket, protocol version 1.
event = {"id": "0b7c8e2e-2f7e-4d7a-9a55-3c1f2b0a9d11-1", "execution_id": "0b7c8e2e-2f7e-4d7a-9a55-3c1f2b0a9d11",
         "event_type": "TaskCompleted", "task_name": "extract", "event_data": "{\"rows\":3}",
         "sequence_num": 1, "created_at": "2025-01-01T00:00:00Z"}
frames = {
    "client-hello.json": {"type": "hello", "protocol_version": 1, "since_id": None},
    "client-hello-since.json": {"type": "hello", "protocol_version": 1, "since_id": 41},
    "client-hello-v2.json": {"type": "hello", "protocol_version": 2},
    "client-ack.json": {"type": "ack", "protocol_version": 1, "id": 42},
    "server-welcome.json": {"type": "welcome", "protocol_version": 1, "max_known_id": 0},
    "server-push.json": {"type": "push", "protocol_version": 1, "id": 1, "kind": "exec_event",
                         "recipient": "exec_events:" + event["execution_id"], "tenant_id": "public",
                         "payload_b64": base64.b64encode(dump(event)).decode()},
    "execution-event.json": event,
    "reactor-force-fire.json": {"command": "force_fire"},
    "reactor-fire-with.json": {"command": "fire_with", "cache": {"events": list(b'{"c": 31}'), "text": "{\"c\": 31}",
                                                                 "plain": {"c": 1.5}, "none": None}},
    "reactor-get-state.json": {"command": "get_state"},
    "reactor-pause.json": {"command": "pause"},
    "reactor-resume.json": {"command": "resume"},
    "reply-fired.json": {"type": "fired"},
    "reply-state.json": {"type": "state", "cache": {"events": "{\"c\":31}", "ticks": "null"}},
    "reply-paused.json": {"type": "paused"},
    "reply-resumed.json": {"type": "resumed"},
    "reply-error.json": {"type": "error", "message": "no reactor registered for 'watch'"},
    "accumulator-ack.json": {"type": "ack", "seq": 3},
    "accumulator-rejected.json": {"type": "rejected", "seq": 2, "code": "invalid_json",
                                  "message": "not a JSON document: expected value at line 1 column 1"},
    "accumulator-event.json": {"sensor": "a", "temperature": 21.5, "tags": ["x"]},
}
for name, frame in frames.items():
    write("decode_frames", name, dump(frame))
