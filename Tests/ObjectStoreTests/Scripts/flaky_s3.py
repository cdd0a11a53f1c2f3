"""An S3 stand-in that fails on purpose, for the client's retry tests.

Usage: flaky_s3.py FAILURES STATUS
Answers the first FAILURES requests with STATUS (an S3 error document, or a
dropped connection when STATUS is 0) and every later GET with the body
b"payload". Prints its port on the first line, then one line per request.
"""
import http.server
import os
import socket
import sys
import threading
import time

failures = int(sys.argv[1])
status = int(sys.argv[2])
seen = 0


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        global seen
        seen += 1
        print(f"request {seen} {self.path}", flush=True)
        if seen <= failures:
            if status == 0:
                # Drop the connection with no answer at all.
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            body = b"<Error><Code>ServiceUnavailable</Code><Message>Please reduce your request rate.</Message></Error>"
            self.send_response(status)
        else:
            body = b"payload"
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def exit_with_parent(parent=os.getppid()):
    # A test process that dies without stopping us must not leave us holding its output pipes.
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


threading.Thread(target=exit_with_parent, daemon=True).start()
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
