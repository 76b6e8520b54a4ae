"""HTTP prediction service: a small WSGI app served by waitress.

Routes (JSON in, JSON out):

* ``GET /health`` - model loaded, run id, artifact checksums verified, safety layer.
* ``GET /model`` - run id, model, metrics, feature list, ``required_columns`` (what a request
  must send) and ``optional_columns`` (derived when absent, with how).
* ``POST /predict`` - one object -> one result object; a list of objects -> a list
  of results (at most ``serve.max_rows``).

MLflow's scoring protocol, beside ours (a client written for ``mlflow models serve`` works unchanged):

* ``POST /invocations`` - JSON ``dataframe_split`` / ``dataframe_records`` / ``instances`` / ``inputs``,
  or ``text/csv`` (:mod:`kaayko_exp.serving.scoring_protocol`) -> ``{"predictions": [...]}``, one
  record per row, the same records ``/predict`` gives.
* ``GET /ping`` - 200 once the model is loaded (the ``/health`` body); ``GET /version`` - the kaayko-exp
  version as text.

Every failure is JSON with a 4xx status: 400 bad JSON (including bodies nested too deeply to parse) or
a body in none of the protocol's forms, 413 body over ``serve.max_body_bytes`` or too many rows, 415 a
content type ``/invocations`` does not read, 422 a row that cannot be scored (missing column, wrong type,
out-of-range value - the message names the field), 404/405 unknown route or method. Our routes answer
``{"error": ..., "kind": ...}``; MLflow's answer MLflow's shape, ``{"error_code": ..., "message": ...}``
(``BAD_REQUEST``, ``INVALID_PARAMETER_VALUE`` for a row that cannot be scored, ...), with the same
status and message. An unexpected exception is logged with its traceback and answered with 500; no
score is ever invented.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable, Iterable

from kaayko_exp.errors import KaaykoError
from kaayko_exp.serving import scoring_protocol as protocol

log = logging.getLogger(__name__)

_JSON = "application/json"
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            411: "Length Required", 413: "Payload Too Large", 415: "Unsupported Media Type",
            422: "Unprocessable Content", 500: "Internal Server Error"}
_MLFLOW_ROUTES = frozenset({"/invocations", "/ping", "/version"})  # errors there in MLflow's shape
# MLflow's error codes (mlflow.protos.databricks_pb2 names) for our statuses
_ERROR_CODES = {400: "BAD_REQUEST", 404: "ENDPOINT_NOT_FOUND", 405: "BAD_REQUEST", 413: "RESOURCE_EXHAUSTED",
                415: "BAD_REQUEST", 422: "INVALID_PARAMETER_VALUE", 500: "INTERNAL_ERROR"}


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
        from kaayko_exp import __version__

        self._version = (__version__.encode(), "text/plain; charset=utf-8")
        self._routes: dict[str, dict[str, Callable[[dict], Any]]] = {
            "/health": {"GET": lambda env: self._health},
            "/model": {"GET": lambda env: self._model},
            "/predict": {"POST": self._predict},
            "/invocations": {"POST": self._invocations},
            "/ping": {"GET": lambda env: self._health},
            "/version": {"GET": lambda env: self._version},
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
                raise HttpError(404, f"No route {environ.get('PATH_INFO')!r}; use GET /health, GET /model, "
                                "POST /predict or MLflow's POST /invocations.", "not found")
            handler = methods.get(environ.get("REQUEST_METHOD", "GET"))
            if handler is None:
                headers.append(("Allow", ", ".join(methods)))
                raise HttpError(405, f"{environ.get('PATH_INFO')} accepts {', '.join(methods)} only.",
                                "method not allowed")
            body = handler(environ)
            if isinstance(body, tuple):  # (body, content type)
                body, headers[0] = body[0], ("Content-Type", body[1])
        except HttpError as exc:
            status, body = exc.status, self._error(environ, exc.status, exc.message, exc.kind)
        except KaaykoError as exc:
            status, body = 422, self._error(environ, 422, str(exc), exc.kind)
        except Exception:  # a bug: log it, answer 500, never a made-up score
            log.exception("internal error while handling %s %s", environ.get("REQUEST_METHOD"),
                          environ.get("PATH_INFO"))
            status = 500
            body = self._error(environ, 500, "Internal error while scoring; nothing was predicted. See the server "
                                             "log.", "internal error")
        headers.append(("Content-Length", str(len(body))))
        start_response(f"{status} {_REASONS.get(status, '')}", headers)
        return [body]

    def _error(self, environ: dict, status: int, message: str, kind: str) -> bytes:
        """An error body: ours (``error``, ``kind``), or MLflow's (``error_code``, ``message``) on its routes."""
        if environ.get("PATH_INFO") in _MLFLOW_ROUTES:
            return self._dump({"error_code": _ERROR_CODES.get(status, "BAD_REQUEST"), "message": message})
        return self._dump({"error": message, "kind": kind})

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

    def _parse_json(self, environ: dict, empty: str) -> Any:
        raw = self._read_body(environ)
        if not raw.strip():
            raise HttpError(400, empty, "bad json")
        try:
            payload = json.loads(raw, parse_constant=_reject_constant)
        except UnicodeDecodeError:
            raise HttpError(400, "The body is not UTF-8 encoded JSON.", "bad json") from None
        except ValueError as exc:
            raise HttpError(400, f"The body is not valid JSON: {exc}.", "bad json") from None
        except RecursionError:
            raise HttpError(400, "The body nests JSON arrays/objects too deeply; a request is one object of "
                            "column -> value (or a list of them).", "bad json") from None
        return payload

    def _predict(self, environ: dict) -> bytes:
        payload = self._parse_json(environ, "Empty body: POST a JSON object (one row) or a list of objects.")
        if isinstance(payload, dict):
            return self._dump(self.predictor.predict_one(payload))
        if isinstance(payload, list):
            return self._dump(self._score_rows(payload))
        raise HttpError(422, f"The body must be a JSON object (one row) or a list of objects, got "
                        f"{type(payload).__name__}.", "prediction input error")

    def _score_rows(self, rows: list) -> list:
        if len(rows) > self.max_rows:
            raise HttpError(413, f"{len(rows)} rows in one request; the limit is serve.max_rows={self.max_rows}.",
                            "too large")
        return self.predictor.predict_many(rows)

    # ------------------------------------------------------------------ /invocations (MLflow's protocol)
    def _invocations(self, environ: dict) -> bytes:
        mime, params = protocol.media_type(environ.get("CONTENT_TYPE", ""))
        if params.get("charset", "utf-8").lower() != "utf-8":
            raise HttpError(415, f"charset={params['charset']}: /invocations reads UTF-8 only.", "bad request")
        try:
            if mime == protocol.JSON:
                rows = protocol.rows_from_json(self._parse_json(
                    environ, "Empty body: POST a JSON object with one of the keys "
                    f"{', '.join(protocol.FORMATS)}, or CSV with Content-Type: text/csv."))
            elif mime == protocol.CSV:
                try:
                    text = self._read_body(environ).decode("utf-8")
                except UnicodeDecodeError:
                    raise HttpError(400, "The CSV body is not UTF-8 encoded.", "bad request") from None
                rows = protocol.rows_from_csv(text)
            else:
                raise HttpError(415, f"Content-Type {mime or '(none)'!r} is not read by /invocations; send "
                                f"{protocol.JSON} (one of {', '.join(protocol.FORMATS)}) or {protocol.CSV}.",
                                "bad request")
        except protocol.FormatError as exc:
            raise HttpError(400, str(exc), "bad request") from None
        return self._dump({"predictions": self._score_rows(rows)})


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
    log.info("serving run %s on http://%s:%s (GET /health, GET /model, POST /predict; MLflow's POST /invocations, "
             "GET /ping, GET /version)",
             predictor.run_id, server.effective_host, server.effective_port)
    print(f"Serving run {predictor.run_id} on http://{server.effective_host}:{server.effective_port} "
          "- Ctrl-C to stop", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        log.info("server stopped")
    finally:
        server.close()
