"""Runs a script's JavaScript on QuickJS inside lowcode.sandbox's process (SC-1).

Imported by the sandboxed process only (this folder is its sys.path entry; nothing of the project
is importable there). QuickJS gets a memory limit; time is limited by the sandbox (CPU time and
wall clock). The script calls the allow-listed API through `context.call`, which the web process
answers as the user the script runs for.
"""

import contextlib
import json

import quickjs

MIB = 1024 * 1024

#: The script's globals and the function its body becomes.
PRELUDE = """
"use strict";
const __input = JSON.parse(__input_json);
const __call = (name, args) => {
  const reply = JSON.parse(__api(name, JSON.stringify(args)));
  if ("error" in reply) throw new Error(reply.error);
  return reply.value;
};
const __logs = [];
const log = (...parts) => { __logs.push(parts.map((part) => typeof part === "string" ? part : JSON.stringify(part)).join(" ")); };
const records = Object.freeze({
  list: (entity, filters, limit) => __call("records.list", [entity, filters || {}, limit || 50]),
  get: (entity, id) => __call("records.get", [entity, id]),
  create: (entity, data) => __call("records.create", [entity, data]),
  update: (entity, id, data) => __call("records.update", [entity, id, data]),
});
"""


def run(payload, context):
    """{"code", "inputs", "memory_mb"} -> {"ok", "value", "logs"} or {"ok": False, "error", "message", "logs"}."""
    js = quickjs.Context()
    js.set_memory_limit(payload["memory_mb"] * MIB)
    js.set("__input_json", json.dumps(payload["inputs"]))

    def call(name, arguments):
        try:
            return json.dumps({"value": context.call(name, *json.loads(arguments))})
        except Exception as error:  # noqa: BLE001 - the script gets the refusal as an exception.
            return json.dumps({"error": str(error)})

    js.add_callable("__api", call)
    source = (PRELUDE + "const __result = (function (params, record, user) {\n" + payload["code"]
              + "\n})(__input.params, __input.record, __input.user);\n"
              "JSON.stringify({value: __result === undefined ? null : __result, logs: __logs});")
    try:
        result = json.loads(js.eval(source))
        return {"ok": True, "value": result["value"], "logs": result["logs"]}
    except quickjs.StackOverflow as error:
        return {"ok": False, "error": "memory", "message": str(error).strip(), "logs": []}
    except quickjs.JSException as error:
        message = str(error).strip()
        logs = []
        with contextlib.suppress(quickjs.JSException):  # Out of memory: the log is lost with it.
            logs = json.loads(js.eval("JSON.stringify(__logs)"))
        return {"ok": False, "error": "memory" if "out of memory" in message else "failed",
                "message": message.splitlines()[0] if message else "failed", "logs": logs}
