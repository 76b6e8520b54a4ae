"""HTTP prediction service: a small WSGI app served by waitress.

Routes (JSON in, JSON out):

* ``GET /health`` - model loaded, run id, artifact checksums verified, safety layer.
* ``GET /model`` - run id, model, metrics, feature list, ``required_columns`` (what a request
  must send) and ``optional_columns`` (derived when absent, with how).
* ``POST /predict`` - one object -> one result object; a list of objects -> a list
  of results (at most ``serve.max_rows``).

Every failure is a JSON ``{"error": ..., "kind": ...}`` with a 4xx status: 400 bad
JSON (including bodies nested too deeply to parse), 413 body over ``serve.max_body_bytes`` or too many rows, 422 a row that cannot
be scored (missing column, wrong type, out-of-range value - the message names the
field), 404/405 unknown route or method. An unexpected exception is logged with
its traceback and answered with 500; no score is ever invented.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable, Iterable

from kaayko_exp.errors import KaaykoError

log = logging.getLogger(__name__)

_JSON = "application/json"
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            411: "Length Required", 413: "Payload Too Large", 422: "Unprocessable Content",
            500: "Internal Server Error"}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class HttpError(Exception):
    def __init__(self, status: int, message: str, kind: str = "request error"):
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


class PredictApp:
    """The WSGI application around a loaded :class:`~kaayko_exp.serving.predictor.Predictor`."""

    def __init__(self, predictor: Any, max_body_bytes: int = 1_000_000, max_rows: int = 10_000):
        self.predictor = predictor
        self.max_body_bytes = int(max_body_bytes)
        self.max_rows = int(max_rows)
        self._health = self._dump({
            "status": "ok", "model_loaded": True, "run_id": predictor.run_id,
            "checksums_verified": predictor.run is not None, "model": predictor.model_name,
            "safety": predictor.safety.name,
        })
        self._model = self._dump(predictor.info())
        self._routes: dict[str, dict[str, Callable[[dict], bytes]]] = {
            "/health": {"GET": lambda env: self._health},
            "/model": {"GET": lambda env: self._model},
            "/predict": {"POST": self._predict},
        }

    @staticmethod
    def _dump(obj: Any) -> bytes:
        return json.dumps(obj, allow_nan=False, separators=(",", ":")).encode("utf-8")

    # ------------------------------------------------------------------ WSGI
    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        status, headers = 200, [("Content-Type", _JSON)]
        try:
            methods = self._routes.get(environ.get("PATH_INFO", ""))
            if methods is None:
                raise HttpError(404, f"No route {environ.get('PATH_INFO')!r}; use GET /health, GET /model or "
                                "POST /predict.", "not found")
            handler = methods.get(environ.get("REQUEST_METHOD", "GET"))
            if handler is None:
                headers.append(("Allow", ", ".join(methods)))
                raise HttpError(405, f"{environ.get('PATH_INFO')} accepts {', '.join(methods)} only.",
                                "method not allowed")
            body = handler(environ)
        except HttpError as exc:
            status, body = exc.status, self._dump({"error": exc.message, "kind": exc.kind})
        except KaaykoError as exc:
            status, body = 422, self._dump({"error": str(exc), "kind": exc.kind})
        except Exception:  # a bug: log it, answer 500, never a made-up score
            log.exception("internal error while handling %s %s", environ.get("REQUEST_METHOD"),
                          environ.get("PATH_INFO"))
            status = 500
            body = self._dump({"error": "Internal error while scoring; nothing was predicted. See the server "
                                        "log.", "kind": "internal error"})
        headers.append(("Content-Length", str(len(body))))
        start_response(f"{status} {_REASONS.get(status, '')}", headers)
        return [body]

    # ------------------------------------------------------------------ /predict
    def _read_body(self, environ: dict) -> bytes:
        length = environ.get("CONTENT_LENGTH") or ""
        stream = environ["wsgi.input"]
        if length:
            try:
                n = int(length)
            except ValueError:
                raise HttpError(400, f"Invalid Content-Length {length!r}.") from None
            if n > self.max_body_bytes:
                raise HttpError(413, f"Request body of {n} bytes exceeds serve.max_body_bytes="
                                f"{self.max_body_bytes}; send fewer rows per request.", "too large")
            return stream.read(n)
        data = stream.read(self.max_body_bytes + 1)  # chunked: read one byte past the limit
        if len(data) > self.max_body_bytes:
            raise HttpError(413, f"Request body exceeds serve.max_body_bytes={self.max_body_bytes}; send fewer "
                            "rows per request.", "too large")
        return data

    def _predict(self, environ: dict) -> bytes:
        raw = self._read_body(environ)
        if not raw.strip():
            raise HttpError(400, "Empty body: POST a JSON object (one row) or a list of objects.", "bad json")
        try:
            payload = json.loads(raw, parse_constant=_reject_constant)
        except UnicodeDecodeError:
            raise HttpError(400, "The body is not UTF-8 encoded JSON.", "bad json") from None
        except ValueError as exc:
            raise HttpError(400, f"The body is not valid JSON: {exc}.", "bad json") from None
        except RecursionError:
            raise HttpError(400, "The body nests JSON arrays/objects too deeply; a request is one object of "
                            "column -> value (or a list of them).", "bad json") from None
        if isinstance(payload, dict):
            return self._dump(self.predictor.predict_one(payload))
        if isinstance(payload, list):
            if len(payload) > self.max_rows:
                raise HttpError(413, f"{len(payload)} rows in one request; the limit is serve.max_rows="
                                f"{self.max_rows}.", "too large")
            return self._dump(self.predictor.predict_many(payload))
        raise HttpError(422, f"The body must be a JSON object (one row) or a list of objects, got "
                        f"{type(payload).__name__}.", "prediction input error")


def make_server(predictor: Any, host: str = "127.0.0.1", port: int = 0, *, threads: int = 4,
                max_body_bytes: int = 1_000_000, max_rows: int = 10_000) -> Any:
    """A waitress server for ``predictor`` (not yet running); ``port=0`` picks a free port.

    Call ``server.run()`` to serve (blocks) and ``server.close()`` to stop;
    ``server.effective_port`` is the bound port.
    """
    from waitress.server import create_server

    app = PredictApp(predictor, max_body_bytes=max_body_bytes, max_rows=max_rows)
    # waitress's own limit sits above ours so that oversized bodies get our JSON 413
    return create_server(app, host=host, port=int(port), threads=int(threads),
                         max_request_body_size=max(4 * int(max_body_bytes), 1 << 20), ident="kaayko-exp",
                         clear_untrusted_proxy_headers=True)


def serve(predictor: Any, cfg: Any) -> None:
    """Serve until interrupted (``predict.py run=... serve.port=8080``)."""
    server = make_server(predictor, cfg.host, cfg.port, threads=cfg.threads,
                         max_body_bytes=cfg.max_body_bytes, max_rows=cfg.max_rows)
    log.info("serving run %s on http://%s:%s (GET /health, GET /model, POST /predict)",
             predictor.run_id, server.effective_host, server.effective_port)
    print(f"Serving run {predictor.run_id} on http://{server.effective_host}:{server.effective_port} "
          "- Ctrl-C to stop", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        log.info("server stopped")
    finally:
        server.close()
