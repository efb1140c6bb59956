package main

const usage = `wsbridge: turn a program that speaks stdin/stdout into a WebSocket endpoint.

Usage:
  wsbridge [flags] COMMAND [ARGS...]
  wsbridge [flags] --dir=DIR
  wsbridge [flags] --config=FILE [COMMAND [ARGS...]]

Each WebSocket connection runs COMMAND; messages from the client go to its
stdin, what it writes on stdout comes back as messages.

Flags marked * mean what they mean in websocketd.

The daemon (in a config file: keys at the top):
  --port=PORT               * TCP port to listen on (default 8080)
  --address=ADDR            * address to bind, repeatable (default: all)
  --unixsocket=PATH         * listen on a unix socket too (alone without
                              --port/--address); a live one is never replaced
  --unixsocket-mode=MODE      its permissions (default 0660)
  --unixsocket-owner=U[:G]    its owner and group
  --trusted-proxy=CIDR,...    reverse proxies in front, repeatable (unix: the
                              unix socket's); only their X-Forwarded-For,
                              -Proto and -Host name the client and scheme
  --trust-forwarded           believe their Forwarded (RFC 7239) instead
  --proxy-protocol            a trusted proxy's connections begin with a PROXY
                              protocol header (v1 or v2; HAProxy send-proxy);
                              one from anyone else is refused
  --origin=HOST[:PORT],...  * browser pages allowed to connect; '*' allows any
  --sameorigin              * allow pages served from the same host and port
                              (also the default when --origin is not given)
  --allow-host=NAME,...       Host names served besides IP addresses, localhost
                              and the machine's name; .lan for a domain, '*'
                              for any; another Host gets 421 (DNS rebinding)
  --maxforks=N              * programs running at once (0: no limit); over it: 429
  --max-conns=N               connections open at once (0: no limit); over it: 503
  --ping-interval=DUR         ping a client once it has been silent for DUR,
                              then every DUR while it stays silent (default 0: never)
  --ping-timeout=DUR          drop a client whose ping goes unanswered (default 10s)
  --handshake-timeout=DUR     the request must arrive within DUR (default 10s)
  --header='N: V'           * add a header to every response, repeatable
  --header-ws='N: V'        * ... to successful WebSocket upgrades only
  --header-http='N: V'      * ... to every response but upgrades
  --loglevel=LEVEL          * debug, trace, access (default), info, error, fatal
  --staticdir=DIR           * serve the files of DIR to plain HTTP GET requests
                              (index.html for a directory; no listings, no
                              hidden files, nothing outside DIR)
  --devconsole              * a plain GET of an endpoint's path gets a page to
                              try it from a browser
  --demo                      serve a demo page at / that talks to COMMAND
  --memory-limit=SIZE         the Go runtime's soft memory limit, e.g. 24MiB
                              (default: none, or GOMEMLIMIT; not both)
  --http-backend=HOST:PORT    forward every request but WebSocket upgrades to
                              the web server at HOST:PORT (or unix:/path), e.g.
                              the board's httpd; --demo, --devconsole and
                              --staticdir are then not served
  --http-backend-timeout=DUR  the backend must start its response, and then go
                              on sending, within DUR (default 60s); else 504
  --http-backend-max-body=SIZE  largest chunked request body, buffered for the
                              backend (default 1MiB); larger: 413

TLS: wss:// and https:// on the listeners (TLS 1.2 or later, 1.3 preferred):
  --ssl                     * serve TLS on --port (and --unixsocket); plain HTTP
                              there gets a 400 saying to use https:// or wss://
  --sslcert=FILE            * the PEM certificate, its chain after it
  --sslkey=FILE             * its PEM private key
  --sslca=FILE              * require a client certificate signed by a CA of FILE
  --redirport=PORT          * plain HTTP on PORT is redirected to https on --port
  --ssl-self-signed           make a self-signed ECDSA pair at --sslcert and
                              --sslkey on first start, when neither exists
                              (key mode 0600); its fingerprint is logged
  --ssl-name=NAME             another name for it (repeatable; localhost,
                              127.0.0.1, ::1 and the host name are in it)
  --ssl-reload-check=DUR      how often to look for new files (default 2s; 0:
                              only on SIGHUP); a pair that fails keeps the old

Behind a load balancer, scraped by Prometheus (recipe: examples/deploy/haproxy):
  --health[=PATH]             answer GET PATH (default /health), whatever the
                              Host, with 200 "ok" while serving and 503
                              "draining" once shutting down
  --drain=DUR                 on SIGTERM, answer health checks with 503 for DUR
                              first, serving on (new sessions too), then close
                              the sessions with 1001 (default 0: at once); give
                              the balancer its check interval × fall count, and
                              a margin; needs --health
  --metrics[=PATH]            serve counters in the Prometheus text format at
                              PATH (default /metrics) on the public port
  --metrics-address=HOST:PORT  ... on a port of their own instead (PATH, if
                              given, there), e.g. 127.0.0.1:9101

Taking over connections from a web server (boa, lighttpd: README, "Deploy on a board"):
  --handover=PATH             also take connections that a web server's CGI hands
                              over on the unix socket PATH; without --port or
                              --address, listen on PATH alone
  --handover-mode=MODE        the socket's permissions (default 0660)
  --handover-owner=USER[:GROUP]  the socket's owner (the web server's user)
  --handover-allow=WHO,...    who may hand over: users, uids, :groups, :gids
                              (default: root, this user, --handover-owner's)
  wsbridge --handover-send=PATH [--handover-timeout=5s]
                              the hand-over program, run by the web server as a
                              CGI; also run as a name starting with nph- (socket:
                              $WSBRIDGE_HANDOVER, else /run/wsbridge.sock)

The endpoint (in a config file: keys of an [endpoint] section):
  --dir=DIR                 * instead of COMMAND: each executable file of DIR
                              is an endpoint, /x.sh/more runs DIR/x.sh with
                              PATH_INFO=/more in its own directory
  --workdir=DIR               the program's working directory (default: the
                              daemon's)
  --framing=NAME              how messages travel on stdio (default line):
                              line: one message per line
                              raw: each stdout read is one binary message
                              len32: 4-byte length-prefixed records
                              mux: len32 with a connection id (--shared only)
  --binary                  * same as --framing=raw
  --max-message=SIZE          largest message a client may send (default 1MiB; 0: no limit)
  --passenv=VAR,...         * daemon variables the program inherits
                              (default PATH,LD_LIBRARY_PATH); nothing else leaks
  --closems=MS              * stretch each wait before signalling the program

Shared process: one COMMAND for every client
  --shared[=lazy]             start COMMAND with the daemon (lazy: at the first
                              connection) and keep it running; it is restarted
                              with backoff when it exits. Everything it writes
                              goes to every client; each client message goes to
                              its stdin whole. With --framing=mux, records carry
                              a connection id: see "mux" in the README.
  --on-restart=close|keep     while COMMAND restarts, close clients with 1012
                              (close, default) or keep them connected (keep)
  --queue=SIZE                how far one client may fall behind the fastest
                              before it counts as slow (default 256KiB)
  --drop-slow                 a slow client loses whole messages instead of
                              being disconnected with 1013
  --assembly-budget=SIZE      bytes all clients of the endpoint may hold in
                              messages still arriving (and, with
                              --cgi-per-message, waiting for a script); a client
                              past it is closed with 1013 (default 8MiB, at least
                              --max-message)

Per-message CGI: COMMAND runs once per message, CGI/1.1 style
  --cgi-per-message           message on stdin (REQUEST_METHOD=POST,
                              CONTENT_LENGTH); stdout, after an optional CGI
                              header block, is the reply
  --cgi-per-conn=N            scripts running at once per connection (default 4)
  --cgi-total=N               ... for all connections (default 64)
  --cgi-timeout=DUR           kill a script running longer (default 30s)
  --cgi-max-output=SIZE       largest reply (default 1MiB)

Several endpoints: a config file
  --config=FILE               read FILE: key = value lines, keys named as the
                              long flags; [endpoint /path] sections, each with
                              command = PROGRAM [ARGS...] (quoted as in sh,
                              nothing expanded) or dir = DIR. A flag and the
                              file may not disagree. See "Many endpoints" in
                              the README.

Started by inetd or systemd (recipes: examples/deploy/inetd, .../systemd):
  --inetd                     serve the one connection on stdin and stdout
                              (inetd nowait, xinetd wait = no, systemd
                              Accept=yes), then exit 0 once the session and
                              its program are over; no --port or --address.
                              Each connection is a new wsbridge, so --shared
                              means one program per connection. When stderr
                              is the connection too, logs go to syslog.
  (no flag)                   systemd socket activation (Accept=no,
                              LISTEN_FDS): serve on the sockets systemd
                              passes instead of opening --port and
                              --address, which must not be given then

  --version                 * print the version
  --help                    * print this help

Not yet supported websocketd flags (they fail with a clear error): --cgidir,
--reverselookup.
`
