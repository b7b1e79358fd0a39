"""Checks for requests to an AWS rest-json API: the service model's shapes and SigV4.

AWS publishes no OpenAPI document for SES; its SDKs are generated from the botocore
*service model* (``amazon-ses-v2/service-2.json``). :class:`ServiceModelValidator` finds
the operation by method and path and checks the JSON body against the operation's input
shape: structures (required and unknown members), lists and maps (min/max), strings
(length, pattern, enum), blobs (base64), numbers and booleans.

:func:`verify_sigv4` recomputes an AWS Signature Version 4 from the request as received,
written from AWS's documentation ("Create a signed AWS API request"), independently of the
httpx-auth code that signs it, so a signing mistake fails the test.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from send.providers.specserver import Recorded


@cache
def load_model(path: Path) -> dict[str, Any]:
    """The service model at ``path``, parsed once."""
    model: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return model


class ServiceModelValidator:
    """Validates rest-json requests against a botocore service model."""

    def __init__(self, model_path: Path) -> None:
        self.model = load_model(model_path)
        self.shapes: dict[str, Any] = self.model["shapes"]
        self.routes = {
            (op["http"]["method"], op["http"]["requestUri"]): op
            for op in self.model["operations"].values()
        }

    def __call__(self, request: Recorded) -> str | None:
        """The first problem with ``request``, or None."""
        op = self.routes.get((request.method, request.path))
        if op is None:
            return f"no operation for {request.method} {request.path} in the service model"
        if not request.content_type.startswith("application/json"):
            return f"content-type: expected application/json, got {request.content_type!r}"
        if not isinstance(request.json, dict):
            return "body is not a JSON object"
        input_shape = self.shapes[op["input"]["shape"]]
        body_members = {
            name: member
            for name, member in input_shape.get("members", {}).items()
            if "location" not in member  # headers, URI and query members are not in the body
        }
        shape = {**input_shape, "members": body_members}
        return self.check(shape, request.json, op["name"])

    def check(self, shape: dict[str, Any], value: Any, where: str) -> str | None:
        """The first problem with ``value`` as ``shape``, or None."""
        kind = shape["type"]
        checker = getattr(self, f"_{kind}", None)
        if checker is None:
            return f"{where}: shape type {kind!r} is not supported by this validator"
        problem: str | None = checker(shape, value, where)
        return problem

    def _structure(self, shape: dict[str, Any], value: Any, where: str) -> str | None:
        if not isinstance(value, dict):
            return f"{where}: expected an object"
        members = shape.get("members", {})
        for name in shape.get("required", []):
            if name not in value:
                return f"{where}.{name}: required member missing"
        for name, item in value.items():
            if name not in members:
                return f"{where}.{name}: unknown member"
            problem = self.check(self.shapes[members[name]["shape"]], item, f"{where}.{name}")
            if problem:
                return problem
        return None

    def _list(self, shape: dict[str, Any], value: Any, where: str) -> str | None:
        if not isinstance(value, list):
            return f"{where}: expected a list"
        if not shape.get("min", 0) <= len(value) <= shape.get("max", len(value)):
            return f"{where}: {len(value)} items outside [{shape.get('min')}, {shape.get('max')}]"
        member = self.shapes[shape["member"]["shape"]]
        for index, item in enumerate(value):
            problem = self.check(member, item, f"{where}[{index}]")
            if problem:
                return problem
        return None

    def _map(self, shape: dict[str, Any], value: Any, where: str) -> str | None:
        if not isinstance(value, dict):
            return f"{where}: expected an object (map)"
        for key, item in value.items():
            problem = self.check(self.shapes[shape["key"]["shape"]], key, f"{where} key")
            problem = problem or self.check(
                self.shapes[shape["value"]["shape"]], item, f"{where}[{key}]"
            )
            if problem:
                return problem
        return None

    def _string(self, shape: dict[str, Any], value: Any, where: str) -> str | None:
        if not isinstance(value, str):
            return f"{where}: expected a string"
        if not shape.get("min", 0) <= len(value) <= shape.get("max", len(value)):
            return f"{where}: length {len(value)} outside [{shape.get('min')}, {shape.get('max')}]"
        if "pattern" in shape and not re.search(shape["pattern"], value):
            return f"{where}: {value!r} does not match {shape['pattern']}"
        if "enum" in shape and value not in shape["enum"]:
            return f"{where}: {value!r} not one of {shape['enum']}"
        return None

    def _blob(self, shape: dict[str, Any], value: Any, where: str) -> str | None:
        if not isinstance(value, str):
            return f"{where}: a blob travels as a base64 string in rest-json"
        try:
            base64.b64decode(value, validate=True)
        except binascii.Error:
            return f"{where}: not valid base64"
        return None

    def _boolean(self, shape: dict[str, Any], value: Any, where: str) -> str | None:
        return None if isinstance(value, bool) else f"{where}: expected a boolean"

    def _integer(self, shape: dict[str, Any], value: Any, where: str) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{where}: expected an integer"
        return None

    _long = _integer

    def _double(self, shape: dict[str, Any], value: Any, where: str) -> str | None:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else f"{where}: expected a number"

    def _timestamp(self, shape: dict[str, Any], value: Any, where: str) -> str | None:
        ok = isinstance(value, int | float | str) and not isinstance(value, bool)
        return None if ok else f"{where}: expected a timestamp"


_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def verify_sigv4(
    request: Recorded,
    *,
    access_key: str,
    secret_key: str,
    region: str,
    service: str,
    session_token: str | None = None,
    now: datetime | None = None,
) -> str | None:
    """Why ``request`` is not validly signed for these credentials, or None when it is."""
    match = _AUTH.match(request.headers.get("authorization", ""))
    if match is None:
        return f"Authorization header malformed: {request.headers.get('authorization')!r}"
    if match["key"] != access_key:
        return f"unknown access key {match['key']!r}"
    if (match["region"], match["service"]) != (region, service):
        return f"credential scope for {match['region']}/{match['service']}"
    amz_date = request.headers.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return f"x-amz-date missing or malformed: {amz_date!r}"
    if amz_date[:8] != match["date"]:
        return "credential scope date differs from x-amz-date"
    if abs((now or datetime.now(UTC)) - signed_at) > timedelta(minutes=15):
        return "request time too skewed"
    signed = match["signed"].split(";")
    needed = {"host", "x-amz-date"} | ({"x-amz-security-token"} if session_token else set())
    if not needed <= set(signed) or signed != sorted(signed):
        return f"SignedHeaders {match['signed']!r} must be sorted and include {sorted(needed)}"
    if session_token and request.headers.get("x-amz-security-token") != session_token:
        return "x-amz-security-token missing or wrong"
    payload_hash = hashlib.sha256(request.body).hexdigest()
    if request.headers.get("x-amz-content-sha256", payload_hash) != payload_hash:
        return "x-amz-content-sha256 does not match the body"
    canonical_headers = "".join(
        f"{name}:{' '.join(request.headers.get(name, '').split())}\n" for name in signed
    )
    query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
        for k, values in sorted(request.query.items())
        for v in sorted(values)
    )
    canonical_request = "\n".join(
        [
            request.method,
            quote(request.path, safe="/-_.~"),
            query,
            canonical_headers,
            match["signed"],
            payload_hash,
        ]
    )
    scope = f"{match['date']}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
        ]
    )
    key = _hmac(f"AWS4{secret_key}".encode(), match["date"])
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    expected = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, match["signature"]):
        return "signature does not match"
    return None
