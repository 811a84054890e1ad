"""word-count-py: a c41 skill written in Python, built with componentize-py
against the same `wit/skill.wit` as the Rust skills. It counts the words of
a text, reports progress, logs, and stores the counts as a JSON artifact.

Build: componentize-py -d ../../wit -w skill componentize app -o word_count_py.wasm
"""

import json
from collections import Counter

import wit_world
from componentize_py_types import Err
from wit_world.imports import artifacts, log, progress, types

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["text"],
    "properties": {
        "text": {"type": "string", "minLength": 1, "maxLength": 100000,
                 "description": "The text whose words to count."},
        "top": {"type": "integer", "minimum": 1, "maximum": 100, "default": 5,
                "description": "How many of the most frequent words to return."},
    },
}


class WitWorld(wit_world.WitWorld):
    def describe(self) -> types.Description:
        return types.Description(
            name="word-count-py",
            version="0.1.0",
            summary="Count the words of a text (a skill written in Python).",
            input_schema=json.dumps(SCHEMA),
            output="text: the most frequent words; one artifact: counts.json; data: {words, distinct, top}",
            services=[],
        )

    def invoke(self, request: types.Request) -> types.Outcome:
        args = json.loads(request.input)
        text, top = args["text"], args.get("top", 5)
        if not text.strip():
            raise Err(types.SkillError_InvalidInput(types.InvalidInput(field="text", reason="only blanks")))
        progress.report(progress.Update(stage="count", fraction=0.2, step=None, message="counting words"))
        words = [w.strip(".,;:!?\"'()[]").lower() for w in text.split()]
        counts = Counter(w for w in words if w)
        # Not Counter.most_common: it imports heapq at run time, and
        # componentize-py bundles only the modules imported at build time.
        best = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        log.log(log.Level.INFO, "counted", [("words", str(len(words))), ("distinct", str(len(counts)))])

        progress.report(progress.Update(stage="store", fraction=0.8, step=None, message="storing counts.json"))
        writer = artifacts.create("counts.json", "application/json")
        writer.write(json.dumps(dict(counts), sort_keys=True).encode())
        stored = writer.finish()

        progress.report(progress.Update(stage="done", fraction=1.0, step=None, message=None))
        return types.Outcome(
            text=", ".join(f"{w} ({n})" for w, n in best),
            artifacts=[stored],
            data=json.dumps({"words": len(words), "distinct": len(counts), "top": best}),
        )
