"""The generated CRD is structural and carries the models' rules (checked without a cluster)."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from ftjobs.api.crd import IMMUTABLE_MESSAGE, crd, guarded, json_schema, openapi_schema
from ftjobs.api.spec import MUTABLE_SPEC_FIELDS, FineTuneJobSpec

ROOT = Path(__file__).resolve().parents[3]
INT_OR_STRING_ANYOF = [{"type": "integer"}, {"type": "string"}]


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[*]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}.*")


SCHEMA = openapi_schema()
NODES = dict(walk(SCHEMA))
SPEC = SCHEMA["properties"]["spec"]


def test_no_refs_and_no_free_unions() -> None:
    text = yaml.safe_dump(SCHEMA)
    assert "$ref" not in text and "oneOf" not in text and "allOf" not in text
    for path, node in NODES.items():
        if "anyOf" in node:
            assert node.get("x-kubernetes-int-or-string") is True, path
            assert node["anyOf"] == INT_OR_STRING_ANYOF, path
        assert "nullable" not in node and node.get("type") != "null", path
        assert "title" not in node and "const" not in node, path
        if "properties" in node:
            assert "additionalProperties" not in node, path


def test_every_node_has_a_type_and_every_property_a_description() -> None:
    for path, node in NODES.items():
        assert "type" in node or node.get("x-kubernetes-int-or-string"), (
            f"{path or '<root>'} has no type"
        )
        # properties (not list items or map values) are what `kubectl explain` shows
        if path and path != ".metadata" and not path.endswith(("[*]", ".*")):
            assert node.get("description"), f"{path} has no description"


def test_preserve_unknown_fields_only_for_deepspeed_overrides() -> None:
    preserved = [p for p, n in NODES.items() if n.get("x-kubernetes-preserve-unknown-fields")]
    assert preserved == [".spec.deepspeed.overrides"]


def test_exclusive_bounds_use_the_openapi_v3_boolean_form() -> None:
    ratio = NODES[".spec.dataset.split.testRatio"]
    assert ratio["maximum"] == 1.0 and ratio["exclusiveMaximum"] is True
    lr = NODES[".spec.hyperparameters.learningRate"]
    assert lr["minimum"] == 0.0 and lr["exclusiveMinimum"] is True


def test_defaults_enums_bounds_and_patterns_survive() -> None:
    assert NODES[".spec.hyperparameters.optimizer"]["enum"] == ["adamw", "adam", "sgd"]
    assert NODES[".spec.hyperparameters.optimizer"]["default"] == "adamw"
    assert NODES[".spec.task"]["enum"][0] == "causal-lm"
    assert NODES[".spec.resources.nodes"]["minimum"] == 1
    assert NODES[".spec.resources.memory"]["default"] == "8Gi"
    assert NODES[".spec.storage.output"]["pattern"].startswith("^(s3://")
    assert set(SPEC["required"]) == {"task", "model", "dataset", "hyperparameters", "storage"}


def test_sections_with_all_defaults_default_to_their_defaults_but_lora_does_not() -> None:
    # (not `{}`: the API server checks a default against the CEL rules before it applies
    # the nested defaults, so `{}` would make the rules fail on missing keys)
    for section in ("deepspeed", "resources", "checkpointing", "evaluation", "failurePolicy"):
        node = SPEC["properties"][section]
        assert node["default"] == {
            k: p["default"] for k, p in node["properties"].items() if "default" in p
        }, section
    assert NODES[".spec.dataset.split"]["default"] == {
        "validationRatio": 0.1,
        "testRatio": 0.1,
        "seed": 42,
    }
    assert SPEC["properties"]["deepspeed"]["default"]["offloadParameters"] == "none"
    assert "default" not in SPEC["properties"]["lora"]
    assert "lora" not in SPEC["required"]


def test_strings_and_lists_in_the_spec_are_bounded_for_cel_cost() -> None:
    for path, node in NODES.items():
        if not path.startswith(".spec") or path.startswith(".spec.deepspeed.overrides"):
            continue
        if node.get("type") == "string" and "enum" not in node:
            assert "maxLength" in node, f"{path}: unbounded string"
        if node.get("type") == "array":
            assert "maxItems" in node, f"{path}: unbounded list"
        if node.get("type") == "object" and "additionalProperties" in node:
            assert "maxProperties" in node, f"{path}: unbounded map"


def cel_rules(node: dict[str, Any]) -> list[dict[str, str]]:
    return list(node.get("x-kubernetes-validations", []))


def test_cross_field_rules_are_cel_with_field_paths() -> None:
    messages = {r["message"]: r for r in cel_rules(SPEC)}
    assert any("fp16 precision needs GPUs" in m for m in messages)
    assert any("lora is supported" in m for m in messages)
    hp = [r for r in cel_rules(NODES[".spec.hyperparameters"]) if "oldSelf" not in r["rule"]]
    assert {r["fieldPath"] for r in hp} == {".maxSteps", ".globalBatchSize"}
    assert cel_rules(NODES[".spec.dataset.split"])[0]["fieldPath"] == ".testRatio"
    assert len([r for r in cel_rules(NODES[".spec.deepspeed"]) if "oldSelf" not in r["rule"]]) == 2
    for _, node in NODES.items():
        for rule in cel_rules(node):
            assert rule["rule"] and rule["message"]


def test_a_rule_goes_before_its_guard() -> None:
    # A valid object passes on the rule alone; the guard, which re-reads every field the
    # rule reads (each read costs the API server a copy of the parent's properties), is
    # evaluated only for an object the rule refuses. The result is the same either way:
    # CEL's `||` is commutative, errors included (test_crd_rules checks the outcomes).
    rule = {"rule": "self.globalBatchSize % self.microBatchSize == 0", "message": "m"}
    out = guarded(rule, NODES[".spec.hyperparameters"])
    assert out["rule"].startswith(f"({rule['rule']}) || !(")
    assert "self.microBatchSize >= 1" in out["rule"].split(" || ", 1)[1]
    # A rule that reads no field needs no guard and is left as it is.
    assert guarded({"rule": "true", "message": "m"}, NODES[".spec.hyperparameters"]) == {
        "rule": "true",
        "message": "m",
    }


def test_every_spec_field_but_suspend_is_immutable() -> None:
    fields = set(SPEC["properties"])
    assert "suspend" in fields
    immutable = {
        name
        for name, prop in SPEC["properties"].items()
        if {"rule": "self == oldSelf", "message": IMMUTABLE_MESSAGE} in cel_rules(prop)
    }
    assert immutable == fields - set(MUTABLE_SPEC_FIELDS)
    # Optional fields: adding or removing one is a change too, checked on spec (a rule on
    # the field itself does not run when the field is absent on one side).
    presence = {r["fieldPath"]: r["rule"] for r in cel_rules(SPEC) if "oldSelf" in r["rule"]}
    assert presence[".lora"] == "has(self.lora) == has(oldSelf.lora)"
    assert ".task" not in presence  # required: present on both sides
    assert set(presence) == {
        f".{name}" for name in immutable if name not in SPEC.get("required", ())
    }


def test_root_metadata_is_only_type_object_and_name() -> None:
    # anything else there (even a description) makes the API server refuse the CRD
    assert SCHEMA["properties"]["metadata"] == {
        "type": "object",
        "properties": {"name": {"type": "string", "description": "Job name."}},
    }


def test_root_rules_check_the_name_like_the_offline_validator() -> None:
    rules = cel_rules(SCHEMA)
    assert {r["fieldPath"] for r in rules} == {".metadata.name"}
    assert any("size() <= 40" in r["rule"] for r in rules)


def test_crd_metadata_names_columns_and_status_subresource() -> None:
    doc = crd()
    spec = doc["spec"]
    assert doc["metadata"]["name"] == "finetunejobs.ftjobs.dev"
    assert spec["names"]["shortNames"] == ["ftj"]
    assert "all" not in spec["names"]["categories"]
    version = spec["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"] if not c.get("priority")]
    assert columns == ["Phase", "Progress", "Loss", "Restarts", "Age"]


def test_committed_crd_matches_the_models() -> None:
    committed = yaml.safe_load((ROOT / "manifests/crd/finetunejobs.ftjobs.dev.yaml").read_text())
    assert committed == crd(), "run `make generate` and commit"


def test_json_schema_for_editors_keeps_refs_and_validates_names() -> None:
    schema = json_schema()
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert "FineTuneJobSpec" in schema["$defs"]
    assert "status" not in schema["properties"]
    # the model itself is what produced it
    assert schema["$defs"]["FineTuneJobSpec"]["description"] == FineTuneJobSpec.__doc__
