"""Static checks of infra/*.tf: the wiring issue #7 asks for, read from the HCL.

Terraform providers cannot be downloaded everywhere this runs, so instead of
`terraform plan` this parses the configuration with python-hcl2 and follows the
references by name:

  S3 notification (imports/) -> imports queue -> event source mapping -> import-worker
  exports queue -> event source mapping -> export-worker
  every work queue -> redrive policy -> its own DLQ (+ a depth alarm)
  queue visibility >= 6 x the consuming function's timeout, for any tfvars
  one IAM role per function, scoped to its prefixes and queues
  a private, encrypted bucket with lifecycle rules; log retention; alarms

Each check is a plain function that raises WiringError. The tests at the end
feed deliberately broken copies of the configuration to the same functions
and expect them to raise, so a check that cannot fail is itself a failure.
"""

from __future__ import annotations

import ast
import functools
import json
import operator
import re
from pathlib import Path

import hcl2
import pytest
from hcl2.utils import SerializationOptions

INFRA = Path(__file__).resolve().parent.parent

# Plain Python values: "text" instead of '"text"', blocks as lists of dicts,
# expressions as "${...}" strings.
HCL_OPTIONS = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)

WORKERS = {
    # binary: (queue resource name, S3 prefix whose uploads notify it or None)
    "import-worker": ("imports", "imports/"),
    "export-worker": ("exports", None),
}
EXPECTED_BINARIES = {"api", "import-worker", "export-worker", "xlport-admin"}
PREFIXES = ("imports/", "exports/", "reports/")

# What each function may do in the bucket and the queues (see iam.tf).
EXPECTED_S3_WRITES = {
    "api": {"imports/"},  # presigned PUT and multipart uploads
    "import-worker": {"reports/"},
    "export-worker": {"exports/"},
    "xlport-admin": set(),
}
EXPECTED_S3_READS = {
    "api": {"exports/", "reports/"},  # presigned downloads
    "import-worker": {"imports/"},
    "export-worker": set(),
    "xlport-admin": {"imports/"},  # the sweep's HeadObject of a stalled upload
}
EXPECTED_SQS_SENDS = {
    "api": {"exports"},
    "import-worker": set(),
    "export-worker": set(),
    "xlport-admin": {"imports", "exports"},  # the sweep re-drives stalled jobs
}

# Actions that only work on Resource "*". The VPC network-interface family
# comes from the AWS managed AWSLambdaVPCAccessExecutionRole, not from
# statements here, but would be acceptable if written out.
ACTIONS_THAT_NEED_STAR = {
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeVpcs",
    "ec2:GetSecurityGroupsForVpc",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
}

# Maximum SQS visibility: the multiplier and the timeout together must fit.
SQS_MAX_VISIBILITY = 43200


class WiringError(AssertionError):
    pass


def check(condition, message: str) -> None:
    if not condition:
        raise WiringError(message)


# --- Loading --------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def parse(text: str) -> dict:
    return hcl2.loads(text, serialization_options=HCL_OPTIONS)


def infra_texts() -> dict[str, str]:
    files = sorted(INFRA.glob("*.tf"))
    assert files, f"no .tf files in {INFRA}"
    return {f.name: f.read_text() for f in files}


class Config:
    """The merged content of a set of .tf files."""

    def __init__(self, texts: dict[str, str]):
        self.resources: dict[tuple[str, str], dict] = {}
        self.data: dict[tuple[str, str], dict] = {}
        self.variables: dict[str, dict] = {}
        self.locals: dict = {}
        self.outputs: dict[str, dict] = {}
        self.terraform: list[dict] = []
        for name, text in texts.items():
            try:
                doc = parse(text)
            except Exception as e:  # noqa: BLE001 - report which file
                raise WiringError(f"{name} does not parse: {e}") from e
            for kind, into in (("resource", self.resources), ("data", self.data)):
                for block in doc.get(kind, []):
                    for rtype, named in block.items():
                        for rname, body in named.items():
                            check((rtype, rname) not in into, f"{kind} {rtype}.{rname} declared twice")
                            into[(rtype, rname)] = body
            for block in doc.get("variable", []):
                self.variables.update(block)
            for block in doc.get("locals", []):
                self.locals.update(block)
            for block in doc.get("output", []):
                self.outputs.update(block)
            self.terraform.extend(doc.get("terraform", []))

    def of_type(self, rtype: str) -> dict[str, dict]:
        return {n: b for (t, n), b in self.resources.items() if t == rtype}

    def resource(self, rtype: str, name: str) -> dict:
        check((rtype, name) in self.resources, f"{rtype}.{name} is referenced but not declared")
        return self.resources[(rtype, name)]

    def doc(self, name: str) -> dict:
        key = ("aws_iam_policy_document", name)
        check(key in self.data, f"data.aws_iam_policy_document.{name} is referenced but not declared")
        return self.data[key]


def load(texts: dict[str, str] | None = None) -> Config:
    return Config(texts if texts is not None else infra_texts())


def mutated(file: str, old: str, new: str) -> Config:
    """The real configuration with one textual change (which must apply)."""
    texts = infra_texts()
    check(old in texts[file], f"test is stale: {old!r} not found in {file}")
    texts[file] = texts[file].replace(old, new, 1)
    return load(texts)


# --- Expressions ----------------------------------------------------------------

RESOURCE_REF = re.compile(r"(?<![\w.])(aws_[a-z0-9_]+)\.([A-Za-z0-9_-]+)")
DATA_REF = re.compile(r"\bdata\.(aws_[a-z0-9_]+)\.([A-Za-z0-9_-]+)")
VAR_REF = re.compile(r"\bvar\.([A-Za-z0-9_]+)")
LOCAL_REF = re.compile(r"\blocal\.([A-Za-z0-9_]+)")


def inner(value) -> str | None:
    """The expression of a value that is exactly one "${...}", else None."""
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        return value[2:-1]
    return None


def refs(value, rtype: str) -> list[str]:
    """Names of resources of type rtype that value refers to."""
    text = json.dumps(value) if not isinstance(value, str) else value
    return [n for t, n in RESOURCE_REF.findall(text) if t == rtype]


def the_ref(value, rtype: str, what: str) -> str:
    names = sorted(set(refs(value, rtype)))
    check(len(names) == 1, f"{what} must refer to exactly one {rtype}, found {names or 'none'} in {value!r}")
    return names[0]


def the_doc(value, what: str) -> str:
    names = [n for t, n in DATA_REF.findall(str(value)) if t == "aws_iam_policy_document"]
    check(
        inner(value) is not None and len(names) == 1 and str(value).endswith(".json}"),
        f"{what} must be data.aws_iam_policy_document.<name>.json (so its statements can be checked), got {value!r}",
    )
    return names[0]


def default(c: Config, var: str):
    check(var in c.variables, f"var.{var} is not declared")
    check("default" in c.variables[var], f"var.{var} has no default")
    return c.variables[var]["default"]


_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def number(c: Config, value, what: str) -> float:
    """Evaluates a numeric attribute with the variables at their defaults."""
    if isinstance(value, bool):
        raise WiringError(f"{what} is a bool, expected a number")
    if isinstance(value, (int, float)):
        return value
    check(value is not None, f"{what} is not set")
    expr = inner(value)
    check(expr is not None, f"{what} is not a number or an expression: {value!r}")

    def substitute(match, kind):
        name = match.group(1)
        v = default(c, name) if kind == "var" else c.locals.get(name)
        return str(number(c, v, f"{kind}.{name}"))

    expr = VAR_REF.sub(lambda m: substitute(m, "var"), expr)
    expr = LOCAL_REF.sub(lambda m: substitute(m, "local"), expr)

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("min", "max"):
            return {"min": min, "max": max}[node.func.id](*(ev(a) for a in node.args))
        raise WiringError(f"{what}: cannot evaluate {expr!r}")

    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as e:
        raise WiringError(f"{what}: cannot evaluate {expr!r}") from e
    return ev(tree)


def resolve_local(c: Config, value):
    """value itself, or the value of the local it is exactly ("${local.x}")."""
    expr = inner(value)
    if expr is not None and re.fullmatch(r"local\.[A-Za-z0-9_]+", expr):
        return c.locals.get(expr.split(".", 1)[1])
    return value


def strings(c: Config, value) -> list[str]:
    """A list attribute, with "${local.x}" resolved."""
    value = resolve_local(c, value)
    if isinstance(value, str):
        return [value]
    check(isinstance(value, list), f"expected a list, got {value!r}")
    return value


def block(body: dict, name: str, what: str) -> dict:
    blocks = body.get(name)
    check(isinstance(blocks, list) and len(blocks) == 1, f"{what} needs exactly one {name} block")
    return blocks[0]


def walk_strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from walk_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk_strings(v)


# --- Checks ---------------------------------------------------------------------


def check_versions(c: Config) -> None:
    versions = [t.get("required_version", "") for t in c.terraform]
    check(
        any(re.search(r">=\s*1\.([5-9]|\d\d)", v) for v in versions),
        f"required_version must be >= 1.5, got {versions}",
    )
    providers = [rp["aws"] for t in c.terraform for rp in t.get("required_providers", []) if "aws" in rp]
    check(providers, "the aws provider must be in required_providers")
    check(providers[0].get("source") == "hashicorp/aws", "the aws provider must come from hashicorp/aws")
    check(
        re.fullmatch(r"~>\s*[56]\.\d+(\.\d+)?", providers[0].get("version", "")),
        f"pin the aws provider to 5.x or 6.x, got {providers[0]}",
    )


def check_references(c: Config) -> None:
    """Every resource, data source, variable and local that is referred to exists."""
    everything = [c.resources, c.data, c.locals, c.outputs]
    for text in (s for part in everything for s in walk_strings(part)):
        for t, n in RESOURCE_REF.findall(text):
            check((t, n) in c.resources, f"{t}.{n} is referenced but not declared")
        for t, n in DATA_REF.findall(text):
            check((t, n) in c.data, f"data.{t}.{n} is referenced but not declared")
        for v in VAR_REF.findall(text):
            check(v in c.variables, f"var.{v} is referenced but not declared")
        for name in LOCAL_REF.findall(text):
            check(name in c.locals, f"local.{name} is referenced but not declared")


FILENAME = re.compile(r"\$\{var\.build_dir\}/([a-z0-9-]+)/bootstrap\.zip")


def functions_by_binary(c: Config) -> dict[str, str]:
    """{cargo binary: aws_lambda_function name}, from each function's filename."""
    found = {}
    for name, fn in c.of_type("aws_lambda_function").items():
        m = FILENAME.fullmatch(str(fn.get("filename", "")))
        check(
            m,
            f"aws_lambda_function.{name}: filename must be \"${{var.build_dir}}/<bin>/bootstrap.zip\", got {fn.get('filename')!r}",
        )
        check(m.group(1) not in found, f"two functions are built from {m.group(1)}")
        found[m.group(1)] = name
    return found


def check_functions(c: Config) -> None:
    by_bin = functions_by_binary(c)
    check(
        set(by_bin) == EXPECTED_BINARIES,
        f"expected functions built from {sorted(EXPECTED_BINARIES)}, got {sorted(by_bin)}",
    )
    arch = c.variables.get("architecture", {})
    check(arch.get("default") == "arm64", "var.architecture must default to arm64")
    check(arch.get("validation"), "var.architecture needs a validation (arm64 or x86_64)")
    for binary, name in by_bin.items():
        fn = c.resource("aws_lambda_function", name)
        what = f"aws_lambda_function.{name}"
        check(
            fn.get("architectures") == ["${var.architecture}"],
            f"{what}: architectures must be [var.architecture]",
        )
        check(fn.get("runtime") == "provided.al2023", f"{what}: runtime must be provided.al2023")
        check(fn.get("handler") == "bootstrap", f"{what}: handler must be bootstrap")
        check(
            fn.get("source_code_hash")
            == f'${{filebase64sha256("${{var.build_dir}}/{binary}/bootstrap.zip")}}',
            f"{what}: source_code_hash must hash the same zip, so new code is deployed",
        )
        vpc = block(fn, "vpc_config", what)
        check(
            refs(vpc.get("subnet_ids"), "aws_subnet") == ["private"],
            f"{what}: must run in the private subnets",
        )
        env = resolve_local(c, block(fn, "environment", what).get("variables"))
        check(isinstance(env, dict), f"{what}: environment variables must be a map or a local map")
        check(env.get("XLPORT_PROFILE") == "aws", f"{what}: XLPORT_PROFILE must be aws")
        check(
            "master_user_secret" in str(env.get("XLPORT_DATABASE_SECRET_ARN")),
            f"{what}: XLPORT_DATABASE_SECRET_ARN must be the RDS-managed secret",
        )
        for key in env:
            check(
                "PASSWORD" not in key and key != "DATABASE_URL",
                f"{what}: {key} would put the database password in the environment",
            )
    export = c.resource("aws_lambda_function", by_bin["export-worker"])
    size = number(c, block(export, "ephemeral_storage", "export worker").get("size"), "export worker /tmp")
    check(size >= 2048, f"the export worker needs >= 2048 MB of /tmp by default, got {size}")


def mapping_for(c: Config, function: str) -> tuple[str, dict]:
    found = [
        (n, m)
        for n, m in c.of_type("aws_lambda_event_source_mapping").items()
        if refs(m.get("function_name"), "aws_lambda_function") == [function]
    ]
    check(
        len(found) == 1,
        f"expected one event source mapping for aws_lambda_function.{function}, found {len(found)}",
    )
    return found[0]


def check_worker_wiring(c: Config, binary: str) -> None:
    expected_queue, prefix = WORKERS[binary]
    function = functions_by_binary(c).get(binary)
    check(function, f"no function is built from {binary}")
    mname, mapping = mapping_for(c, function)
    what = f"aws_lambda_event_source_mapping.{mname}"
    queue = the_ref(mapping.get("event_source_arn"), "aws_sqs_queue", f"{what}.event_source_arn")
    check(
        queue == expected_queue,
        f"{binary} must consume the {expected_queue} queue, its mapping reads {queue}",
    )
    check(
        mapping.get("function_response_types") == ["ReportBatchItemFailures"],
        f'{what}: function_response_types must be ["ReportBatchItemFailures"]',
    )
    scaling = block(mapping, "scaling_config", what)
    concurrency = number(c, scaling.get("maximum_concurrency"), f"{what} maximum_concurrency")
    check(2 <= concurrency <= 1000, f"{what}: maximum_concurrency must be 2-1000, got {concurrency}")
    batch = number(c, mapping.get("batch_size"), f"{what} batch_size")
    check(1 <= batch <= 10, f"{what}: batch_size must be set (1-10), got {batch}")

    notifications = [
        (n, q)
        for n, body in c.of_type("aws_s3_bucket_notification").items()
        for q in body.get("queue", [])
        if refs(q.get("queue_arn"), "aws_sqs_queue") == [queue]
    ]
    if prefix is None:
        check(not notifications, f"nothing in S3 should notify the {queue} queue (the api enqueues)")
        return
    check(
        len(notifications) == 1,
        f"exactly one S3 notification must target the {queue} queue, found {len(notifications)}",
    )
    nname, q = notifications[0]
    bucket = the_ref(
        c.resource("aws_s3_bucket_notification", nname).get("bucket"), "aws_s3_bucket", "notification bucket"
    )
    check(
        q.get("filter_prefix") == prefix,
        f"the notification to {queue} must filter on {prefix!r}, got {q.get('filter_prefix')!r}",
    )
    check(
        any(str(e).startswith("s3:ObjectCreated:") for e in q.get("events", [])),
        f"the notification to {queue} must fire on s3:ObjectCreated:*",
    )
    # The queue must let S3 (and only this bucket) send to it.
    policies = [
        p
        for p in c.of_type("aws_sqs_queue_policy").values()
        if refs(p.get("queue_url"), "aws_sqs_queue") == [queue]
    ]
    check(len(policies) == 1, f"the {queue} queue needs an aws_sqs_queue_policy for S3")
    statements = c.doc(the_doc(policies[0].get("policy"), f"{queue} queue policy")).get("statement", [])
    check(
        any(
            "sqs:SendMessage" in strings(c, s.get("actions", []))
            and any("s3.amazonaws.com" in p.get("identifiers", []) for p in s.get("principals", []))
            and any(
                c_.get("variable") == "aws:SourceArn" and refs(c_.get("values"), "aws_s3_bucket") == [bucket]
                for c_ in s.get("condition", [])
            )
            for s in statements
        ),
        f"the {queue} queue policy must allow s3.amazonaws.com to SendMessage, conditioned on the bucket's ARN",
    )


REDRIVE = re.compile(
    r"deadLetterTargetArn\s*=\s*aws_sqs_queue\.([A-Za-z0-9_-]+)\.arn.*?maxReceiveCount\s*=\s*([^,}\s]+)", re.S
)


def check_dead_letter_queues(c: Config) -> dict[str, str]:
    """Every work queue redrives to its own DLQ; returns {queue: dlq}."""
    queues = c.of_type("aws_sqs_queue")
    check(queues, "no SQS queues")
    redrives = {}
    for name, q in queues.items():
        if "redrive_policy" not in q:
            continue
        m = REDRIVE.search(str(q["redrive_policy"]))
        check(
            m,
            f"aws_sqs_queue.{name}: redrive_policy must name deadLetterTargetArn = aws_sqs_queue.<dlq>.arn and maxReceiveCount",
        )
        dlq, max_receive = m.group(1), m.group(2)
        check(dlq in queues and dlq != name, f"aws_sqs_queue.{name}: DLQ {dlq} is not another declared queue")
        count = number(c, "${" + max_receive + "}", f"aws_sqs_queue.{name} maxReceiveCount")
        check(count >= 1, f"aws_sqs_queue.{name}: maxReceiveCount must be >= 1")
        redrives[name] = dlq
    dlqs = set(redrives.values())
    check(len(dlqs) == len(redrives), f"each queue needs its own DLQ: {redrives}")
    missing = sorted(name for name in queues if name not in dlqs and name not in redrives)
    check(not missing, f"queues without a redrive policy to a dead-letter queue: {missing}")
    for name, q in queues.items():
        if name in dlqs:
            check("redrive_policy" not in q, f"DLQ {name} must not redrive further")
            continue
        dlq_retention = number(
            c, queues[redrives[name]].get("message_retention_seconds", 345600), f"{redrives[name]} retention"
        )
        retention = number(c, q.get("message_retention_seconds", 345600), f"{name} retention")
        check(
            dlq_retention > retention,
            f"DLQ {redrives[name]} must keep messages longer than {name} (they keep their enqueue time)",
        )
    for name in ("imports", "exports"):
        check(name in redrives, f"the {name} queue must have a DLQ")
    return redrives


VISIBILITY = re.compile(r"^\$\{\s*(\S+)\s*\*\s*(\S+)\s*\}$")


def check_visibility(c: Config) -> None:
    """visibility_timeout_seconds >= 6 x the consumer's timeout, at the defaults and by construction."""
    for mname, mapping in c.of_type("aws_lambda_event_source_mapping").items():
        queue_name = the_ref(mapping.get("event_source_arn"), "aws_sqs_queue", f"mapping {mname}")
        fn_name = the_ref(mapping.get("function_name"), "aws_lambda_function", f"mapping {mname}")
        queue, fn = c.resource("aws_sqs_queue", queue_name), c.resource("aws_lambda_function", fn_name)
        vis_value, timeout_value = queue.get("visibility_timeout_seconds"), fn.get("timeout")
        vis = number(c, vis_value, f"{queue_name} visibility_timeout_seconds")
        timeout = number(c, timeout_value, f"{fn_name} timeout")
        check(vis >= 6 * timeout, f"{queue_name}: visibility {vis} s < 6 x {fn_name}'s timeout {timeout} s")
        check(vis <= SQS_MAX_VISIBILITY, f"{queue_name}: visibility {vis} s exceeds the SQS maximum")

        # By construction: visibility = k * <the function's own timeout expression>,
        # k a literal >= 6 or a variable whose validation enforces >= 6, so no
        # tfvars can break the rule.
        m = VISIBILITY.match(str(vis_value))
        timeout_expr = inner(timeout_value)
        check(
            m and timeout_expr in m.groups(),
            f"{queue_name}: visibility_timeout_seconds must be <multiplier> * {timeout_expr} (the consumer's timeout), got {vis_value!r}",
        )
        k = m.group(1) if m.group(2) == timeout_expr else m.group(2)
        if re.fullmatch(r"\d+", k):
            check(int(k) >= 6, f"{queue_name}: multiplier {k} < 6")
        else:
            kvar = re.fullmatch(r"var\.([A-Za-z0-9_]+)", k)
            check(kvar, f"{queue_name}: multiplier {k!r} must be a number or a variable")
            conditions = [
                v.get("condition", "") for v in c.variables.get(kvar.group(1), {}).get("validation", [])
            ]
            floors = [
                int(x) for cond in conditions for x in re.findall(rf"var\.{kvar.group(1)}\s*>=\s*(\d+)", cond)
            ]
            check(
                floors and max(floors) >= 6,
                f"var.{kvar.group(1)} needs a validation enforcing >= 6, has {conditions}",
            )
        tvar = re.fullmatch(r"var\.([A-Za-z0-9_]+)", timeout_expr or "")
        if tvar:
            conditions = [
                v.get("condition", "") for v in c.variables.get(tvar.group(1), {}).get("validation", [])
            ]
            check(
                any(re.search(rf"var\.{tvar.group(1)}\s*<=\s*900\b", cond) for cond in conditions),
                f"var.{tvar.group(1)} needs a validation capping it at Lambda's 900 s",
            )


def roles_by_function(c: Config) -> dict[str, str]:
    return {
        name: the_ref(fn.get("role"), "aws_iam_role", f"aws_lambda_function.{name}.role")
        for name, fn in c.of_type("aws_lambda_function").items()
    }


def check_roles(c: Config) -> None:
    roles = roles_by_function(c)
    shared = {r for r in roles.values() if list(roles.values()).count(r) > 1}
    check(not shared, f"functions share roles {sorted(shared)}: each function needs its own")
    unused = set(c.of_type("aws_iam_role")) - set(roles.values())
    check(not unused, f"roles no function uses: {sorted(unused)}")
    for fn, role in roles.items():
        body = c.resource("aws_iam_role", role)
        trust = c.doc(the_doc(body.get("assume_role_policy"), f"aws_iam_role.{role}.assume_role_policy"))
        check(
            any(
                "lambda.amazonaws.com" in p.get("identifiers", [])
                for s in trust.get("statement", [])
                for p in s.get("principals", [])
            ),
            f"aws_iam_role.{role} must trust lambda.amazonaws.com",
        )
        attachments = [
            a
            for a in c.of_type("aws_iam_role_policy_attachment").values()
            if refs(a.get("role"), "aws_iam_role") == [role]
        ]
        check(
            any(
                str(resolve_local(c, a.get("policy_arn"))).endswith(
                    ":policy/service-role/AWSLambdaVPCAccessExecutionRole"
                )
                for a in attachments
            ),
            f"aws_iam_role.{role} (a VPC function's role) needs AWSLambdaVPCAccessExecutionRole",
        )


def role_statements(c: Config, role: str) -> list[dict]:
    out = []
    for pname, p in c.of_type("aws_iam_role_policy").items():
        if refs(p.get("role"), "aws_iam_role") == [role]:
            out.extend(c.doc(the_doc(p.get("policy"), f"aws_iam_role_policy.{pname}")).get("statement", []))
    return out


def grants(c: Config, role: str):
    """(action, resource) pairs a role is allowed, resources as written."""
    for s in role_statements(c, role):
        if s.get("effect", "Allow") != "Allow":
            continue
        for action in strings(c, s.get("actions", [])):
            for resource in strings(c, s.get("resources", [])):
                yield action, resource


def check_least_privilege(c: Config) -> None:
    # Every inline policy is a policy document, so nothing escapes the checks below.
    for rtype in ("aws_iam_role_policy", "aws_iam_policy", "aws_sqs_queue_policy", "aws_s3_bucket_policy"):
        for name, body in c.of_type(rtype).items():
            the_doc(body.get("policy"), f"{rtype}.{name}.policy")
    for (_, dname), doc in ((k, v) for k, v in c.data.items() if k[0] == "aws_iam_policy_document"):
        for s in doc.get("statement", []):
            if s.get("effect", "Allow") != "Allow":
                continue  # a Deny may be as broad as it likes
            actions = strings(c, s.get("actions", []))
            check(
                not s.get("not_actions") and not s.get("not_resources"),
                f"{dname}: NotAction/NotResource grants are too broad",
            )
            for action in actions:
                check(
                    action != "*" and not action.endswith(":*"),
                    f"{dname}: action {action!r} is a wildcard; name the actions",
                )
            resources = strings(c, s.get("resources", []))
            if "*" in resources:
                extra = set(actions) - ACTIONS_THAT_NEED_STAR
                check(not extra, f'{dname}: Resource "*" for {sorted(extra)}, which can be scoped')
            for r in resources:
                check(
                    not re.fullmatch(r"arn:[^:]*:(s3|sqs|secretsmanager):.*\*", r),
                    f"{dname}: resource {r!r} is a wildcard ARN",
                )

    by_bin = functions_by_binary(c)
    roles = roles_by_function(c)
    for binary, fn in by_bin.items():
        role = roles[fn]
        writes, reads, sends, consumes = set(), set(), set(), set()
        for action, resource in grants(c, role):
            if action.startswith("s3:") and "/" in resource:
                prefix = re.fullmatch(r"\$\{aws_s3_bucket\.\w+\.arn\}/([a-z]+/)\*", resource)
                check(prefix, f"role {role}: {action} on {resource!r} is not scoped to one of {PREFIXES}")
                check(prefix.group(1) in PREFIXES, f"role {role}: unknown prefix {prefix.group(1)}")
                if action == "s3:PutObject":
                    writes.add(prefix.group(1))
                if action == "s3:GetObject":
                    reads.add(prefix.group(1))
            elif action.startswith("s3:"):
                check(action == "s3:ListBucket", f"role {role}: bucket-level {action} is not needed")
            if action.startswith("sqs:"):
                queue = the_ref(resource, "aws_sqs_queue", f"role {role} {action}")
                if action == "sqs:SendMessage":
                    sends.add(queue)
                if action in ("sqs:ReceiveMessage", "sqs:DeleteMessage"):
                    consumes.add(queue)
            if action.startswith("secretsmanager:"):
                check(
                    action == "secretsmanager:GetSecretValue",
                    f"role {role}: {action} is more than reading the password",
                )
                check(
                    "master_user_secret" in resource,
                    f"role {role}: may only read the database secret, not {resource!r}",
                )
        check(
            writes == EXPECTED_S3_WRITES[binary],
            f"{binary} may write {sorted(writes)}, expected {sorted(EXPECTED_S3_WRITES[binary])}",
        )
        check(
            reads == EXPECTED_S3_READS[binary],
            f"{binary} may read {sorted(reads)}, expected {sorted(EXPECTED_S3_READS[binary])}",
        )
        check(
            sends == EXPECTED_SQS_SENDS[binary],
            f"{binary} may send to {sorted(sends)}, expected {sorted(EXPECTED_SQS_SENDS[binary])}",
        )
        expected_consumes = {WORKERS[binary][0]} if binary in WORKERS else set()
        check(
            consumes == expected_consumes,
            f"{binary} may consume {sorted(consumes)}, expected {sorted(expected_consumes)}",
        )


def check_bucket_private(c: Config) -> str:
    buckets = c.of_type("aws_s3_bucket")
    check(len(buckets) == 1, f"expected one bucket, found {sorted(buckets)}")
    bucket = next(iter(buckets))

    def for_bucket(rtype):
        found = [b for b in c.of_type(rtype).values() if refs(b.get("bucket"), "aws_s3_bucket") == [bucket]]
        check(len(found) == 1, f"aws_s3_bucket.{bucket} needs one {rtype}")
        return found[0]

    pab = for_bucket("aws_s3_bucket_public_access_block")
    for flag in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
        check(pab.get(flag) is True, f"public access block: {flag} must be true")
    sse = for_bucket("aws_s3_bucket_server_side_encryption_configuration")
    algo = block(
        block(sse, "rule", "encryption"), "apply_server_side_encryption_by_default", "encryption"
    ).get("sse_algorithm")
    check(
        algo in ("AES256", "aws:kms", "aws:kms:dsse"), f"bucket encryption must be configured, got {algo!r}"
    )
    ownership = block(for_bucket("aws_s3_bucket_ownership_controls"), "rule", "ownership")
    check(
        ownership.get("object_ownership") == "BucketOwnerEnforced",
        "ACLs must be disabled (BucketOwnerEnforced)",
    )
    check(not c.of_type("aws_s3_bucket_acl"), "no bucket ACLs")
    for name, policy in c.of_type("aws_s3_bucket_policy").items():
        for s in c.doc(the_doc(policy.get("policy"), f"aws_s3_bucket_policy.{name}")).get("statement", []):
            if s.get("effect", "Allow") == "Allow":
                public = any("*" in p.get("identifiers", []) for p in s.get("principals", []))
                check(not public, f"aws_s3_bucket_policy.{name} allows everyone")
    cors = block(for_bucket("aws_s3_bucket_cors_configuration"), "cors_rule", "CORS")
    check(
        "PUT" in cors.get("allowed_methods", []) and "ETag" in cors.get("expose_headers", []),
        "CORS must allow PUT and expose ETag (browser multipart uploads)",
    )
    check("*" not in strings(c, cors.get("allowed_origins", [])), "CORS must name origins, not *")
    return bucket


def check_lifecycle(c: Config) -> None:
    bucket = check_bucket_private(c)
    configs = [
        b
        for b in c.of_type("aws_s3_bucket_lifecycle_configuration").values()
        if refs(b.get("bucket"), "aws_s3_bucket") == [bucket]
    ]
    check(len(configs) == 1, "the bucket needs one lifecycle configuration")
    rules = [r for r in configs[0].get("rule", []) if r.get("status") == "Enabled"]
    for prefix in PREFIXES:
        matching = [r for r in rules if any(f.get("prefix") == prefix for f in r.get("filter", []))]
        check(matching, f"no enabled lifecycle rule for {prefix}")
        days = number(
            c, block(matching[0], "expiration", f"rule for {prefix}").get("days"), f"{prefix} expiration"
        )
        check(days >= 1, f"{prefix} expiration must be at least a day")
    aborts = [
        r
        for r in rules
        if r.get("abort_incomplete_multipart_upload") and all(not f for f in r.get("filter", [{}]))
    ]
    check(aborts, "a bucket-wide rule must abort incomplete multipart uploads")
    days = number(
        c, aborts[0]["abort_incomplete_multipart_upload"][0].get("days_after_initiation"), "abort days"
    )
    check(days >= 1, "abort_incomplete_multipart_upload needs days_after_initiation >= 1")


def check_logs(c: Config) -> None:
    groups = c.of_type("aws_cloudwatch_log_group")
    for name, g in groups.items():
        check("retention_in_days" in g, f"aws_cloudwatch_log_group.{name} has no retention")
        check(
            number(c, g["retention_in_days"], f"{name} retention") > 0,
            f"aws_cloudwatch_log_group.{name}: retention must be > 0",
        )
    for name, fn in c.of_type("aws_lambda_function").items():
        logging = block(fn, "logging_config", f"aws_lambda_function.{name}")
        group = the_ref(
            logging.get("log_group"), "aws_cloudwatch_log_group", f"{name} logging_config.log_group"
        )
        check(
            groups[group].get("name") == "/aws/lambda/" + str(fn.get("function_name")),
            f"aws_lambda_function.{name} logs to {groups[group].get('name')!r}, expected /aws/lambda/<its name>",
        )


def alarmed(c: Config, namespace: str, metric: str, dimension: str, rtype: str) -> set[str]:
    """Names of rtype resources that have an alarm on namespace/metric."""
    covered = set()
    for name, alarm in c.of_type("aws_cloudwatch_metric_alarm").items():
        if alarm.get("namespace") != namespace or alarm.get("metric_name") != metric:
            continue
        check(alarm.get("alarm_actions"), f"alarm {name} notifies nobody")
        value = (alarm.get("dimensions") or {}).get(dimension)
        if value == "${each.value}":
            values = list((alarm.get("for_each") or {}).values())
            check(values, f"alarm {name} uses each.value without a for_each map")
        else:
            values = [value]
        for v in values:
            covered.update(refs(v, rtype))
    return covered


def check_alarms(c: Config) -> None:
    dlqs = set(check_dead_letter_queues(c).values())
    missing = dlqs - alarmed(c, "AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "aws_sqs_queue")
    check(not missing, f"no depth alarm on DLQs {sorted(missing)}")
    functions = set(c.of_type("aws_lambda_function"))
    for metric in ("Errors", "Throttles"):
        missing = functions - alarmed(c, "AWS/Lambda", metric, "FunctionName", "aws_lambda_function")
        check(not missing, f"no {metric} alarm on functions {sorted(missing)}")


def check_network_and_database(c: Config) -> None:
    for rtype in ("aws_internet_gateway", "aws_nat_gateway", "aws_eip"):
        check(not c.of_type(rtype), f"{rtype}: the VPC is private, services are reached through endpoints")
    for name, s in c.of_type("aws_subnet").items():
        check(s.get("map_public_ip_on_launch") is not True, f"aws_subnet.{name} hands out public IPs")
    endpoints = {
        str(e.get("service_name", "")).rsplit(".", 1)[-1]: e for e in c.of_type("aws_vpc_endpoint").values()
    }
    check(endpoints.get("s3", {}).get("vpc_endpoint_type") == "Gateway", "S3 needs a gateway endpoint")
    for service in ("sqs", "secretsmanager"):
        e = endpoints.get(service, {})
        check(
            e.get("vpc_endpoint_type") == "Interface" and e.get("private_dns_enabled") is True,
            f"{service} needs an interface endpoint with private DNS",
        )
    dbs = c.of_type("aws_db_instance")
    check(len(dbs) == 1, "expected one RDS instance")
    db = next(iter(dbs.values()))
    check(db.get("publicly_accessible") is False, "Postgres must not be publicly accessible")
    check(db.get("storage_encrypted") is True, "Postgres storage must be encrypted")
    check(
        db.get("manage_master_user_password") is True,
        "the password must live in Secrets Manager (manage_master_user_password)",
    )
    check("password" not in db, "no password in the configuration")
    groups = c.of_type("aws_db_subnet_group")
    check(
        all(refs(g.get("subnet_ids"), "aws_subnet") == ["private"] for g in groups.values()) and groups,
        "Postgres must sit in the private subnets",
    )


def check_migrations(c: Config) -> None:
    invocations = c.of_type("aws_lambda_invocation")
    check(len(invocations) == 1, "expected one aws_lambda_invocation running migrations")
    inv = next(iter(invocations.values()))
    check(
        inv.get("count") == "${var.run_migrations_on_apply ? 1 : 0}",
        "the invocation must be behind var.run_migrations_on_apply",
    )
    check(default(c, "run_migrations_on_apply") is True, "run_migrations_on_apply must default to true")
    fn = the_ref(inv.get("function_name"), "aws_lambda_function", "migrations invocation")
    check(
        functions_by_binary(c).get("xlport-admin") == fn,
        "migrations must run the function built from xlport-admin",
    )
    check(
        c.resource("aws_lambda_function", fn).get("function_name") == "${var.name_prefix}-migrate",
        "the function is named <prefix>-migrate",
    )
    check(
        re.search(r'command\s*=\s*\\?"migrate\\?"', str(inv.get("input"))),
        f"the invocation must send {{\"command\":\"migrate\"}}, sends {inv.get('input')!r}",
    )
    check(
        "source_code_hash" in json.dumps(inv.get("triggers")),
        "new code (new migrations) must re-trigger the invocation",
    )


def check_sweep(c: Config) -> None:
    rules = c.of_type("aws_cloudwatch_event_rule")
    sweep = [n for n, r in rules.items() if str(r.get("schedule_expression", "")).startswith("rate(")]
    check(len(sweep) == 1, f"expected one scheduled rule for the sweep, found {sorted(rules)}")
    targets = [
        t for t in c.of_type("aws_cloudwatch_event_target").values()
        if refs(t.get("rule"), "aws_cloudwatch_event_rule") == sweep
    ]
    check(len(targets) == 1, "the sweep rule must have one target")
    admin = functions_by_binary(c).get("xlport-admin")
    check(
        refs(targets[0].get("arn"), "aws_lambda_function") == [admin],
        "the sweep must invoke the xlport-admin function",
    )
    check(
        re.search(r'command\s*=\s*\\?"sweep\\?"', str(targets[0].get("input"))),
        f"the sweep target must send {{\"command\":\"sweep\"}}, sends {targets[0].get('input')!r}",
    )
    check(
        any(
            p.get("principal") == "events.amazonaws.com"
            and refs(p.get("function_name"), "aws_lambda_function") == [admin]
            for p in c.of_type("aws_lambda_permission").values()
        ),
        "EventBridge must be allowed to invoke the xlport-admin function",
    )


def check_outputs(c: Config) -> None:
    for name in ("api_url", "bucket_name", "imports_queue_url", "exports_queue_url"):
        check(name in c.outputs, f"output {name} is missing")


def check_api(c: Config) -> None:
    apis = c.of_type("aws_apigatewayv2_api")
    check(len(apis) == 1 and next(iter(apis.values())).get("protocol_type") == "HTTP", "one HTTP API")
    by_bin = functions_by_binary(c)
    integrations = [
        n
        for n, i in c.of_type("aws_apigatewayv2_integration").items()
        if refs(i.get("integration_uri"), "aws_lambda_function") == [by_bin["api"]]
    ]
    check(len(integrations) == 1, "the HTTP API must integrate with the api function")
    routes = {
        r.get("route_key")
        for r in c.of_type("aws_apigatewayv2_route").values()
        if refs(r.get("target"), "aws_apigatewayv2_integration") == integrations
    }
    check(
        "$default" in routes, f"a $default route must send everything to the api function, routes: {routes}"
    )
    permissions = [
        p
        for p in c.of_type("aws_lambda_permission").values()
        if refs(p.get("function_name"), "aws_lambda_function") == [by_bin["api"]]
    ]
    check(
        any(p.get("principal") == "apigateway.amazonaws.com" for p in permissions),
        "API Gateway must be allowed to invoke the api function",
    )


def check_example_tfvars(c: Config) -> None:
    example = INFRA / "terraform.tfvars.example"
    check(example.exists(), "infra/terraform.tfvars.example is missing")
    values = parse(example.read_text())
    unknown = set(values) - set(c.variables)
    check(not unknown, f"terraform.tfvars.example sets undeclared variables {sorted(unknown)}")


# --- Tests: the real configuration ----------------------------------------------------


@pytest.fixture(scope="module")
def infra() -> Config:
    return load()


def test_versions(infra):
    check_versions(infra)


def test_every_reference_resolves(infra):
    check_references(infra)


def test_functions_are_cargo_lambda_zips_for_provided_al2023(infra):
    check_functions(infra)


def test_s3_notification_to_imports_queue_to_mapping_to_import_worker(infra):
    check_worker_wiring(infra, "import-worker")


def test_exports_queue_to_mapping_to_export_worker(infra):
    check_worker_wiring(infra, "export-worker")


def test_every_queue_has_a_dead_letter_queue(infra):
    assert check_dead_letter_queues(infra) == {"imports": "imports_dlq", "exports": "exports_dlq"}


def test_visibility_is_at_least_6x_the_consumer_timeout(infra):
    check_visibility(infra)


def test_one_role_per_function(infra):
    check_roles(infra)


def test_least_privilege(infra):
    check_least_privilege(infra)


def test_bucket_is_private_and_encrypted(infra):
    check_bucket_private(infra)


def test_lifecycle_expires_prefixes_and_aborts_multipart(infra):
    check_lifecycle(infra)


def test_log_groups_have_retention(infra):
    check_logs(infra)


def test_alarms_on_dlqs_errors_and_throttles(infra):
    check_alarms(infra)


def test_private_network_and_database(infra):
    check_network_and_database(infra)


def test_migrations_run_on_apply(infra):
    check_migrations(infra)


def test_a_schedule_sweeps_stalled_jobs(infra):
    check_sweep(infra)


def test_outputs(infra):
    check_outputs(infra)


def test_http_api_routes_everything_to_the_api_function(infra):
    check_api(infra)


def test_example_tfvars_only_sets_declared_variables(infra):
    check_example_tfvars(infra)


# --- Tests: the checks catch broken configurations ----------------------------------

# (file, text, replacement, the check that must now fail)
BROKEN = {
    "exports queue without redrive": (
        "queues.tf",
        "  redrive_policy = jsonencode({\n    deadLetterTargetArn = aws_sqs_queue.exports_dlq.arn",
        "  redrive_policy_removed = jsonencode({\n    deadLetterTargetArn = aws_sqs_queue.exports_dlq.arn",
        check_dead_letter_queues,
    ),
    "both queues share one DLQ": (
        "queues.tf",
        "deadLetterTargetArn = aws_sqs_queue.exports_dlq.arn",
        "deadLetterTargetArn = aws_sqs_queue.imports_dlq.arn",
        check_dead_letter_queues,
    ),
    "visibility only 2x the timeout": (
        "queues.tf",
        "var.queue_visibility_timeout_multiplier * var.import_worker_timeout_seconds",
        "2 * var.import_worker_timeout_seconds",
        check_visibility,
    ),
    "visibility tied to the wrong function's timeout": (
        "queues.tf",
        "var.queue_visibility_timeout_multiplier * var.export_worker_timeout_seconds",
        "var.queue_visibility_timeout_multiplier * var.api_timeout_seconds",
        check_visibility,
    ),
    "multiplier validation allows less than 6": (
        "variables.tf",
        "var.queue_visibility_timeout_multiplier >= 6",
        "var.queue_visibility_timeout_multiplier >= 1",
        check_visibility,
    ),
    "import mapping invokes the export worker": (
        "functions.tf",
        "function_name    = aws_lambda_function.import_worker.arn",
        "function_name    = aws_lambda_function.export_worker.arn",
        lambda c: check_worker_wiring(c, "import-worker"),
    ),
    "notification filters the wrong prefix": (
        "storage.tf",
        'filter_prefix = "imports/"',
        'filter_prefix = "reports/"',
        lambda c: check_worker_wiring(c, "import-worker"),
    ),
    "notification sends to the exports queue": (
        "storage.tf",
        "queue_arn     = aws_sqs_queue.imports.arn",
        "queue_arn     = aws_sqs_queue.exports.arn",
        lambda c: check_worker_wiring(c, "import-worker"),
    ),
    "mapping without partial batch failures": (
        "functions.tf",
        'function_response_types            = ["ReportBatchItemFailures"]',
        "function_response_types            = []",
        lambda c: check_worker_wiring(c, "export-worker"),
    ),
    "mapping without maximum concurrency": (
        "functions.tf",
        "maximum_concurrency = var.export_worker_max_concurrency",
        "maximum_retry_attempts = 2",
        lambda c: check_worker_wiring(c, "export-worker"),
    ),
    "two functions share a role": (
        "migrations.tf",
        "role          = aws_iam_role.migrate.arn",
        "role          = aws_iam_role.api.arn",
        check_roles,
    ),
    "s3:* on the import worker": (
        "iam.tf",
        'actions   = ["s3:GetObject"]',
        'actions   = ["s3:*"]',
        check_least_privilege,
    ),
    "secret readable on Resource *": (
        "iam.tf",
        "resources = [aws_db_instance.main.master_user_secret[0].secret_arn]\n  }\n}\n\n# --- import worker",
        'resources = ["*"]\n  }\n}\n\n# --- import worker',
        check_least_privilege,
    ),
    "api may write anywhere in the bucket": (
        "iam.tf",
        'resources = ["${aws_s3_bucket.files.arn}/imports/*"]\n  }\n\n  statement {\n    sid     = "PresignDownloads"',
        'resources = ["${aws_s3_bucket.files.arn}/*"]\n  }\n\n  statement {\n    sid     = "PresignDownloads"',
        check_least_privilege,
    ),
    "export worker may write reports": (
        "iam.tf",
        'resources = ["${aws_s3_bucket.files.arn}/exports/*"]',
        'resources = ["${aws_s3_bucket.files.arn}/exports/*", "${aws_s3_bucket.files.arn}/reports/*"]',
        check_least_privilege,
    ),
    "bucket not fully blocked from the public": (
        "storage.tf",
        "restrict_public_buckets = true",
        "restrict_public_buckets = false",
        check_bucket_private,
    ),
    "reports never expire": (
        "storage.tf",
        'prefix = "reports/"',
        'prefix = "report-archive/"',
        check_lifecycle,
    ),
    "no abort of incomplete multipart uploads": (
        "storage.tf",
        "abort_incomplete_multipart_upload {",
        "noncurrent_version_expiration {",
        check_lifecycle,
    ),
    "a log group without retention": (
        "functions.tf",
        'name              = "/aws/lambda/${var.name_prefix}-export-worker"\n  retention_in_days = var.log_retention_days',
        'name              = "/aws/lambda/${var.name_prefix}-export-worker"',
        check_logs,
    ),
    "no throttles alarms": (
        "alarms.tf",
        'metric_name         = "Throttles"',
        'metric_name         = "Invocations"',
        check_alarms,
    ),
    "no alarm on the exports DLQ": (
        "alarms.tf",
        "    exports = aws_sqs_queue.exports_dlq.name\n",
        "",
        check_alarms,
    ),
    "migrations always run": (
        "migrations.tf",
        "count = var.run_migrations_on_apply ? 1 : 0",
        "count = 1",
        check_migrations,
    ),
    "database publicly accessible": (
        "database.tf",
        "publicly_accessible    = false",
        "publicly_accessible    = true",
        check_network_and_database,
    ),
    "a function outside the build dir layout": (
        "functions.tf",
        'filename         = "${var.build_dir}/api/bootstrap.zip"',
        'filename         = "api.zip"',
        check_functions,
    ),
    "a reference to a queue that does not exist": (
        "iam.tf",
        "resources = [aws_sqs_queue.exports.arn]",
        "resources = [aws_sqs_queue.export.arn]",
        check_references,
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_check_catches(case):
    file, old, new, check_fn = BROKEN[case]
    broken = mutated(file, old, new)
    with pytest.raises(WiringError):
        check_fn(broken)


# Small hand-written configurations, independent of infra/*.tf.

QUEUE_WITHOUT_DLQ = """
resource "aws_sqs_queue" "imports" {
  name = "imports"
}
resource "aws_sqs_queue" "exports" {
  name = "exports"
}
"""

PUBLIC_BUCKET = """
resource "aws_s3_bucket" "files" {
  bucket = "b"
}
resource "aws_s3_bucket_public_access_block" "files" {
  bucket                  = aws_s3_bucket.files.id
  block_public_acls       = false
  block_public_policy     = false
  ignore_public_acls      = false
  restrict_public_buckets = false
}
"""

STAR_POLICY = """
data "aws_iam_policy_document" "worker" {
  statement {
    actions   = ["sqs:*"]
    resources = ["*"]
  }
}
"""

SHARED_ROLE = """
data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}
resource "aws_iam_role" "shared" {
  assume_role_policy = data.aws_iam_policy_document.assume.json
}
resource "aws_lambda_function" "a" {
  role = aws_iam_role.shared.arn
}
resource "aws_lambda_function" "b" {
  role = aws_iam_role.shared.arn
}
"""

LOW_VISIBILITY = """
variable "t" {
  default = 900
}
resource "aws_sqs_queue" "imports" {
  visibility_timeout_seconds = 900
}
resource "aws_lambda_function" "w" {
  timeout = var.t
}
resource "aws_lambda_event_source_mapping" "m" {
  event_source_arn = aws_sqs_queue.imports.arn
  function_name    = aws_lambda_function.w.arn
}
"""


@pytest.mark.parametrize(
    "snippet, check_fn",
    [
        (QUEUE_WITHOUT_DLQ, check_dead_letter_queues),
        (PUBLIC_BUCKET, check_bucket_private),
        (STAR_POLICY, check_least_privilege),
        (SHARED_ROLE, check_roles),
        (LOW_VISIBILITY, check_visibility),
    ],
    ids=["queue-without-dlq", "public-bucket", "star-policy", "shared-role", "low-visibility"],
)
def test_check_rejects_snippet(snippet, check_fn):
    with pytest.raises(WiringError):
        check_fn(load({"snippet.tf": snippet}))
