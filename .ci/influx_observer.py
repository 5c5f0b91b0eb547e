"""Stands between kwok's port-forward of the InfluxDB pod and the real InfluxDB: every request is
passed on unchanged and the answer returned unchanged, and each request's method, path and headers
are appended to a log (one JSON object a line), so a test can see what reached InfluxDB's port,
such as how each token was carried.
Usage: influx_observer.py LISTEN_PORT TARGET_HOST:PORT LOG_FILE"""
import http.client
import http.server
import json
import sys
import threading

PORT, TARGET, LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3]
HOST, TPORT = TARGET.rsplit(":", 1)
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def relay(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        with lock, open(LOG, "a") as log:
            log.write(json.dumps({"method": self.command, "path": self.path,
                                  "headers": {k.lower(): v for k, v in self.headers.items()}}) + "\n")
        conn = http.client.HTTPConnection(HOST, int(TPORT), timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        conn.request(self.command, self.path, body=body, headers=headers)
        res = conn.getresponse()
        data = res.read()
        self.send_response(res.status)
        for k, v in res.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        conn.close()

    do_GET = do_POST = do_HEAD = do_PUT = do_PATCH = do_DELETE = relay

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
