"""Request validation for the provider fakes: OpenAPI documents and JSON schemas.

:class:`Recorded` is one request as the fake server received it; a validator returns
None for a valid request, or the error text (an :class:`Invalid`, which also carries
the dotted paths of the bad body values). See :mod:`providers.specserver` for the server.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs

import jsonschema
import jsonschema.protocols
import referencing
import referencing.jsonschema
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.validation.request.validators import (
    V31RequestParametersValidator,
    V31RequestSecurityValidator,
)
from werkzeug.datastructures import Headers, ImmutableMultiDict

__all__ = [
    "SPECS",
    "Invalid",
    "JsonSchemaValidator",
    "OpenApiValidator",
    "Recorded",
    "Validator",
    "load_openapi",
    "parse_form",
]

#: the provider specs shipped beside the project (read-only)
#: the providers' own specs, in shared/ beside the checkout (CI lays a copy there too)
SPECS = next(
    (
        folder
        for folder in (
            Path(__file__).resolve().parents[4] / "shared" / "provider-specs",
            Path("/work/shared/provider-specs"),
        )
        if folder.is_dir()
    ),
    Path("/work/shared/provider-specs"),
)


@dataclass
class Recorded:
    """One request as the server received it."""

    method: str
    path: str
    #: query parameters, every value of each
    query: dict[str, list[str]]
    #: header names lower-cased (a repeated header keeps its last value)
    headers: dict[str, str]
    body: bytes
    #: the parsed JSON body, when the request was JSON
    json: Any = None
    #: the form fields of a multipart or urlencoded body, every value of each, in order
    form: dict[str, list[str]] | None = None
    valid: bool = True
    #: the validation error of an invalid request
    error: str | None = None
    #: dotted paths of the invalid body values (``personalizations.1.to.0.email``)
    error_paths: tuple[str, ...] = ()
    #: the client's (host, port): equal ports mean a reused keep-alive connection
    peer: tuple[str, int] = ("", 0)
    #: the status the server answered (None: the connection was reset instead)
    answered: int | None = None

    @property
    def content_type(self) -> str:
        """The Content-Type header, or empty."""
        return self.headers.get("content-type", "")


class Invalid(str):
    """A validation error: its text, plus the dotted paths of the invalid body values."""

    paths: tuple[str, ...]

    def __new__(cls, text: str, paths: Sequence[str] = ()) -> Invalid:
        self = super().__new__(cls, text)
        self.paths = tuple(paths)
        return self


class Validator(Protocol):
    """Checks one request; returns the error (a str, or :class:`Invalid` with the paths
    of the bad values), or None when the request is valid."""

    def __call__(self, request: Recorded) -> str | None:
        """Validate ``request``."""


@functools.cache
def load_openapi(path: Path) -> OpenAPI:
    """The parsed spec at ``path``, once per session (the specs are large)."""
    # the published specs are trusted input; validating the spec itself costs seconds
    return OpenAPI.from_file_path(str(path), config=Config(spec_validator_cls=None))


@dataclass
class _OpenApiRequest:
    """The request protocol openapi-core reads."""

    host_url: str
    path: str
    method: str
    body: bytes | None
    content_type: str
    parameters: RequestParameters


@dataclass(frozen=True)
class _FormOperation:
    """One multipart/form-data operation: its path pattern and body schema validator."""

    method: str
    pattern: re.Pattern[str]
    arrays: frozenset[str]
    validator: jsonschema.protocols.Validator

    def check(self, request: Recorded) -> str | None:
        """The body's errors: OpenAPI form rules (repeated parts make an array property)."""
        form = parse_form(request.content_type, request.body)
        if form is None:
            return f"content-type: expected multipart/form-data, got {request.content_type!r}"
        instance = {
            k: v if k in self.arrays else (v[0] if len(v) == 1 else v) for k, v in form.items()
        }
        errors = list(self.validator.iter_errors(instance))[:10]
        if not errors:
            return None
        paths = [".".join(map(str, e.absolute_path)) for e in errors]
        text = " | ".join(
            f"{p or '<body>'}: {e.message}" for p, e in zip(paths, errors, strict=True)
        )
        return Invalid(f"InvalidRequestBody: {text}", paths)


@dataclass(frozen=True)
class _FormOperations:
    operations: tuple[_FormOperation, ...]

    def match(self, request: Recorded) -> _FormOperation | None:
        if not request.content_type.startswith("multipart/form-data"):
            return None
        for op in self.operations:
            if op.method == request.method.lower() and op.pattern.fullmatch(request.path):
                return op
        return None


@functools.cache
def _multipart_operations(spec_path: Path) -> _FormOperations:
    """The spec's multipart operations, their body schemas compiled for jsonschema.

    openapi-core decodes multipart bodies property by property through reference lookups
    (10-20 ms a request); the same schema checked by jsonschema on the parsed form takes
    microseconds, which matters for tests that make a thousand calls.
    """
    document = load_openapi(spec_path).spec.read_value()
    root = {**document, "$id": "urn:provider-spec"}
    registry: referencing.Registry[Any] = referencing.Registry().with_resource(
        "urn:provider-spec", referencing.jsonschema.DRAFT202012.create_resource(root)
    )
    resolver = registry.resolver()
    operations = []
    for template, item in document.get("paths", {}).items():
        for method, operation in item.items():
            content = (operation.get("requestBody") or {}) if isinstance(operation, dict) else {}
            if "$ref" in content:
                content = resolver.lookup("urn:provider-spec" + content["$ref"]).contents
            if "multipart/form-data" not in content.get("content", {}):
                continue
            pointer = "/".join(
                p.replace("~", "~0").replace("/", "~1")
                for p in (
                    "paths",
                    template,
                    method,
                    "requestBody",
                    "content",
                    "multipart/form-data",
                    "schema",
                )
            )
            schema_ref = f"urn:provider-spec#/{pointer}"
            resolved = resolver.lookup(schema_ref).contents
            while "$ref" in resolved:
                resolved = resolver.lookup("urn:provider-spec" + resolved["$ref"]).contents
            arrays = frozenset(
                name
                for name, prop in resolved.get("properties", {}).items()
                if prop.get("type") == "array"
            )
            pattern = re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)))
            validator = jsonschema.Draft202012Validator(
                {"$ref": schema_ref},
                registry=registry,
                format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
            )
            operations.append(_FormOperation(method, pattern, arrays, validator))
    return _FormOperations(tuple(operations))


class OpenApiValidator:
    """Validates requests against an OpenAPI document: path, method, parameters, security,
    and body schema.

    The spec's servers name the public hosts; requests are matched as if they had been
    sent to ``server`` (default: the first server URL in the spec).
    """

    def __init__(self, spec_path: Path, server: str | None = None) -> None:
        self.spec = load_openapi(spec_path)
        servers = self.spec.spec / "servers"
        self.server = (server or str((servers / 0 / "url").read_value())).rstrip("/")
        # the fast multipart path uses the 3.1 validators; other versions take the slow one
        v31 = str(self.spec.version) == "OpenAPIV3.1"
        self._forms = _multipart_operations(spec_path) if v31 else _FormOperations(())
        self._security = V31RequestSecurityValidator(self.spec.spec)
        self._parameters = V31RequestParametersValidator(self.spec.spec)
        # openapi-core's validators keep per-call state in places: one request at a time
        self._lock = threading.Lock()

    def __call__(self, request: Recorded) -> str | None:
        """The validation error(s) of ``request``, or None."""
        query = ImmutableMultiDict([(k, v) for k, vs in request.query.items() for v in vs])
        oa_request = _OpenApiRequest(
            host_url=self.server,
            path=request.path,
            method=request.method.lower(),
            body=request.body or None,
            content_type=request.content_type,
            parameters=RequestParameters(query=query, header=Headers(request.headers)),
        )
        form = self._forms.match(request)
        with self._lock:
            try:
                if form is None:
                    self.spec.validate_request(oa_request)
                else:
                    self._security.validate(oa_request)
                    self._parameters.validate(oa_request)
            except Exception as exc:  # openapi-core raises a tree of its own error classes
                return _describe(exc)
        return None if form is None else form.check(request)


def _describe(exc: BaseException) -> Invalid:
    """The validation error and its causes in one line (openapi-core nests them)."""
    parts: list[str] = []
    paths: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(parts) < 12:
        parts.append(f"{current.__class__.__name__}: {current}")
        for inner in getattr(current, "schema_errors", None) or ():
            path = ".".join(map(str, inner.absolute_path))
            paths.append(path)
            parts.append(f"{path or '<body>'}: {inner.message}")
        current = current.__cause__
    return Invalid(" | ".join(parts), paths)


class JsonSchemaValidator:
    """Validates JSON bodies against a JSON schema per ``(METHOD, path)`` route, and that
    the ``required_headers`` are present and non-empty (for APIs with no OpenAPI spec)."""

    def __init__(
        self,
        routes: Mapping[tuple[str, str], Mapping[str, Any]],
        *,
        required_headers: Mapping[str, str | None] | None = None,
    ) -> None:
        self.routes = {
            (method.upper(), path): jsonschema.Draft202012Validator(
                schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
            )
            for (method, path), schema in routes.items()
        }
        for validator in self.routes.values():
            validator.check_schema(validator.schema)
        #: header name -> exact expected value (None: any non-empty value)
        self.required_headers = {k.lower(): v for k, v in (required_headers or {}).items()}

    def __call__(self, request: Recorded) -> str | None:
        """The validation error(s) of ``request``, or None."""
        validator = self.routes.get((request.method, request.path))
        if validator is None:
            return f"no route {request.method} {request.path} in the schema"
        for name, expected in self.required_headers.items():
            got = request.headers.get(name, "")
            if not got or (expected is not None and got.split(";")[0].strip() != expected):
                return f"header {name}: expected {expected or 'a value'}, got {got!r}"
        if "application/json" not in request.content_type:
            return f"content-type: expected application/json, got {request.content_type!r}"
        if request.json is None:
            return "body is not JSON"
        errors = sorted(validator.iter_errors(request.json), key=lambda e: list(e.path))
        if errors:
            paths = [".".join(map(str, e.absolute_path)) for e in errors[:10]]
            return Invalid(
                " | ".join(
                    f"{p or '<body>'}: {e.message}" for p, e in zip(paths, errors, strict=True)
                ),
                paths,
            )
        return None


# --- the server -----------------------------------------------------------------------------


_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_FIELD_NAME = re.compile(rb'\bname="([^"]*)"', re.IGNORECASE)


def parse_form(content_type: str, body: bytes) -> dict[str, list[str]] | None:
    """The fields of a urlencoded or multipart body, every value of each, in order."""
    if content_type.startswith("application/x-www-form-urlencoded"):
        return parse_qs(body.decode("utf-8"), keep_blank_values=True)
    boundary = _BOUNDARY.search(content_type)
    if not content_type.startswith("multipart/form-data") or boundary is None:
        return None
    # split by hand: the email package takes milliseconds per request, this microseconds
    form: dict[str, list[str]] = {}
    for chunk in body.split(b"--" + boundary[1].encode())[1:]:
        if chunk.startswith(b"--"):
            break
        head, found, data = chunk.partition(b"\r\n\r\n")
        name = _FIELD_NAME.search(head)
        if found and name is not None:
            form.setdefault(name[1].decode(), []).append(data.removesuffix(b"\r\n").decode())
    return form
