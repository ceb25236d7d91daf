"""urllib over wasi:http: a snippet's `urllib.request.urlopen` sends its
request through the host's `wasi:http/outgoing-handler`, so it reaches
exactly the hosts the plugin's manifest allows (`allowed_outbound_hosts`)
within the host's HTTP limits, and nothing when none is granted.

CPython on WASI has no sockets; this module is the only way out.
"""

import http.client
import io
import urllib.error
import urllib.parse
import urllib.request
import urllib.response

from componentize_py_types import Err
from wit_world.imports import outgoing_handler, streams
from wit_world.imports import wasi_http_types as wh

# Headers wasi:http sets itself, or refuses from a guest.
FORBIDDEN = {
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "http2-settings",
}
METHODS = {
    "GET": wh.Method_Get,
    "HEAD": wh.Method_Head,
    "POST": wh.Method_Post,
    "PUT": wh.Method_Put,
    "DELETE": wh.Method_Delete,
    "OPTIONS": wh.Method_Options,
    "PATCH": wh.Method_Patch,
}
CHUNK = 4096


def describe(code) -> str:
    """An ErrorCode_* case as text: `HttpRequestDenied`, `DnsError (...)`."""
    name = type(code).__name__.removeprefix("ErrorCode_")
    if name == "HttpRequestDenied":
        return f"{name}: the host is not in the code step's allowed_outbound_hosts"
    value = getattr(code, "value", None)
    return f"{name} ({value})" if value is not None else name


def failure(exc: Err) -> urllib.error.URLError:
    value = exc.value
    if type(value).__name__.startswith("ErrorCode_"):
        return urllib.error.URLError(describe(value))
    return urllib.error.URLError(f"wasi:http: {value!r}")


def send(method: str, url: str, headers, body: bytes):
    """Sends one request; returns (status, [(name, value)], body)."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise urllib.error.URLError(f"unsupported URL scheme {scheme!r}")
    entries = [
        (name, value.encode("latin-1"))
        for name, value in headers
        if name.lower() not in FORBIDDEN
    ]
    try:
        request = wh.OutgoingRequest(wh.Fields.from_list(entries))
        kind = METHODS.get(method.upper())
        request.set_method(kind() if kind else wh.Method_Other(method))
        request.set_scheme(wh.Scheme_Https() if scheme == "https" else wh.Scheme_Http())
        request.set_authority(parts.netloc.rpartition("@")[2])
        path = parts.path or "/"
        request.set_path_with_query(path + (f"?{parts.query}" if parts.query else ""))
        outgoing = request.body()
        future = outgoing_handler.handle(request, None)
        stream = outgoing.write()
        for start in range(0, len(body), CHUNK):
            stream.blocking_write_and_flush(body[start : start + CHUNK])
        stream.__exit__(None, None, None)
        wh.OutgoingBody.finish(outgoing, None)
        while (answer := future.get()) is None:
            with future.subscribe() as ready:
                ready.block()
    except Err as exc:
        raise failure(exc) from None
    # answer: Ok(Ok(response)) | Ok(Err(error-code)) | Err(())
    inner = answer.value
    if isinstance(answer, Err) or isinstance(inner, Err):
        raise urllib.error.URLError(describe(inner.value) if isinstance(inner, Err) else "no response")
    response = inner.value
    status = response.status()
    fields = [(name, value.decode("latin-1")) for name, value in response.headers().entries()]
    incoming = response.consume()
    reader = incoming.stream()
    chunks = []
    while True:
        try:
            chunks.append(reader.blocking_read(1 << 16))
        except Err as exc:
            if isinstance(exc.value, streams.StreamError_Closed):
                break
            raise urllib.error.URLError(f"reading the response: {exc.value!r}") from None
    reader.__exit__(None, None, None)
    wh.IncomingBody.finish(incoming)
    return status, fields, b"".join(chunks)


class WasiHandler(urllib.request.BaseHandler):
    """Opens http and https URLs through wasi:http (before urllib's own
    handlers, which would need sockets)."""

    handler_order = 100

    def http_open(self, req):
        data = req.data
        if data is None:
            body = b""
        elif isinstance(data, (bytes, bytearray, memoryview)):
            body = bytes(data)
        elif hasattr(data, "read"):
            body = data.read()
        else:
            body = b"".join(data)
        headers = [(k, v) for k, v in req.header_items() if k.lower() != "content-length"]
        if body or req.get_method() in ("POST", "PUT", "PATCH"):
            headers.append(("Content-Length", str(len(body))))
        status, fields, content = send(req.get_method(), req.full_url, headers, body)
        message = http.client.HTTPMessage()
        for name, value in fields:
            message[name] = value
        response = urllib.response.addinfourl(io.BytesIO(content), message, req.full_url, status)
        response.msg = http.client.responses.get(status, "")
        return response

    https_open = http_open


def install() -> None:
    """Makes `urllib.request.urlopen` use wasi:http."""
    urllib.request.install_opener(urllib.request.build_opener(WasiHandler()))
