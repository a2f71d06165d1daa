"""The benchmark's floor: a bare WSGI callable answering a 2-byte body, served by waitress.

    python bench/floor.py PORT THREADS

bench/run.py starts it on a free loopback port with the thread count of production.ini's
[server:main] and drives it with the same wrk settings as the API: what one waitress process
on this machine, with wrk beside it, can answer at all. Every scenario is reported as a
ratio to it, so figures from different machines can be compared.
"""

import sys

import waitress

BODY = b"ok"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def app(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]


if __name__ == "__main__":
    port, threads = int(sys.argv[1]), int(sys.argv[2])
    waitress.serve(app, host="127.0.0.1", port=port, threads=threads)
