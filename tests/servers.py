"""Real servers on 127.0.0.1 for the remote tests: an HTTP file server (Python's
``http.server``, which ignores Range requests unless ``ranges`` is set) that records
requests and can add latency, fail or hang, and moto's S3 server."""

from __future__ import annotations

import functools
import os
import socket
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _Handler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        server: FileServer = self.server.owner  # type: ignore[attr-defined]
        path = self.path.split("?", 1)[0]
        with server.lock:
            server.requests.append(path)
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
            action = server.take_action(path)
        try:
            if server.delay:
                time.sleep(server.delay)
            if action == "fail":
                self.send_error(503, "Service Unavailable")
            elif server.missing_is_forbidden and not Path(self.translate_path(path)).exists():
                self.send_error(403, "Forbidden")  # as S3 answers without ListBucket
            elif action == "reset":
                self.close_connection = True
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           b"\x01\x00\x00\x00\x00\x00\x00\x00")
                self.connection.close()  # RST: "connection reset by peer"
            elif action == "hang":
                time.sleep(server.hang_seconds)
                super().do_GET()
            elif server.ranges and self.headers.get("Range"):
                self._send_range(self.headers["Range"])
            else:
                super().do_GET()
        finally:
            with server.lock:
                server.in_flight -= 1

    def _send_range(self, header: str) -> None:
        """206 with the bytes asked (``bytes=a-b``, ``a-``, ``-n``), as nginx or S3 do."""
        path = Path(self.translate_path(self.path.split("?", 1)[0]))
        if not path.is_file():
            self.send_error(404, "File not found")
            return
        data = path.read_bytes()
        first, _, last = header.removeprefix("bytes=").partition("-")
        if not first:
            start, stop = max(0, len(data) - int(last)), len(data)
        else:
            start, stop = int(first), min(len(data), int(last) + 1 if last else len(data))
        body = data[start:stop]
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's name
        server: FileServer = self.server.owner  # type: ignore[attr-defined]
        path = self.path.split("?", 1)[0]
        if server.missing_is_forbidden and not Path(self.translate_path(path)).exists():
            self.send_error(403, "Forbidden")
        else:
            super().do_HEAD()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a burst of concurrent requests is not dropped

    def handle_error(self, request, client_address) -> None:
        pass  # a connection reset on purpose is not news


class FileServer:
    """Serves ``root`` on 127.0.0.1 from a thread.

    Attributes
    ----------
    requests
        Every GET path, in order.
    delay
        Seconds added to every request (latency).
    fail, reset, hang
        ``{path substring: count}``: the next ``count`` requests whose path contains it
        get a 503, a connection reset, or an answer after ``hang_seconds``.
    max_in_flight
        The most requests served at the same time.
    missing_is_forbidden
        Answer 403 rather than 404 for what is not there, as S3 does for a reader who
        may not list the bucket.
    ranges
        Answer Range requests with 206 and the bytes asked; Python's ``http.server``
        (``python -m http.server``) ignores them and sends the whole file.
    """

    def __init__(self, root: str | os.PathLike, delay: float = 0.0) -> None:
        self.root = Path(root)
        self.delay = delay
        self.requests: list[str] = []
        self.fail: dict[str, int] = {}
        self.reset: dict[str, int] = {}
        self.hang: dict[str, int] = {}
        #: answer 403, not 404, for a path that is not there (a bucket without listing)
        self.missing_is_forbidden = False
        self.ranges = False
        self.hang_seconds = 3.0
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        handler = functools.partial(_Handler, directory=str(self.root))
        self.httpd = _QuietServer(("127.0.0.1", 0), handler)
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def take_action(self, path: str) -> str | None:
        for action, table in (("fail", self.fail), ("reset", self.reset), ("hang", self.hang)):
            for part, left in table.items():
                if part in path and left > 0:
                    table[part] = left - 1
                    return action
        return None

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def url(self, name: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()
            self.in_flight = self.max_in_flight = 0

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class S3Server:
    """moto's S3 server mode on 127.0.0.1, with the AWS variables a user would set
    (``AWS_ENDPOINT_URL`` pointing at it, fake credentials)."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)

    def __enter__(self) -> S3Server:
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()

    @property
    def environment(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}

    def filesystem(self):
        """A fresh s3fs filesystem on the server (no instance cache)."""
        import s3fs

        return s3fs.S3FileSystem(key="testing", secret="testing", skip_instance_cache=True,
                                 client_kwargs={"endpoint_url": self.endpoint,
                                                "region_name": "us-east-1"})

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def make_public(self, bucket: str) -> None:
        """Anyone may read ``bucket`` and what it holds (a public dataset)."""
        client = self.client()
        client.put_bucket_acl(Bucket=bucket, ACL="public-read")
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                client.put_object_acl(Bucket=bucket, Key=obj["Key"], ACL="public-read")

    def upload(self, local: str | os.PathLike, bucket: str, key: str) -> str:
        """Copy a local folder to ``s3://bucket/key``; returns that URL."""
        fs = self.filesystem()
        if not fs.exists(bucket):
            self.client().create_bucket(Bucket=bucket)
            fs.invalidate_cache()
        fs.put(str(local), f"{bucket}/{key}", recursive=True)
        return f"s3://{bucket}/{key}"
