"""Stands in for Grafana's health endpoint behind a port-forward (no Grafana runs in the tests):
GET /api/health answers as Grafana 13.2.0 (the pinned chart's appVersion) does; anything else 404."""
import http.server
import json
import sys

HEALTH = json.dumps({"database": "ok", "version": "13.2.0", "commit": "stand-in"}).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.split("?")[0] == "/api/health":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(HEALTH)))
            self.end_headers()
            self.wfile.write(HEALTH)
        else:
            self.send_error(404)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
