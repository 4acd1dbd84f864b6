#!/bin/bash
# capture.sh PORT OUTDIR: records docker-ssh's responses byte for byte.
set -eu
P=$1; O=$2; mkdir -p "$O"
curl -sN -m 3 "http://127.0.0.1:$P/api/v1/terminal/stream/" -o "$O/stream.raw" -D "$O/stream.headers" &
sleep 1
id=$(sed -n 's/^data: //p' "$O/stream.raw" | head -1)
curl -s -X POST "http://127.0.0.1:$P/api/v1/terminal/send/$id" -d $'data=ls -al\n' -D "$O/send.headers" -o "$O/send.body"
curl -s -X POST "http://127.0.0.1:$P/api/v1/terminal/send/$id" --data-urlencode 'data=caf%C3%A9+x;y' -o /dev/null
curl -s -X POST "http://127.0.0.1:$P/api/v1/terminal/send/$id" -d 'data=a+b%20c%zz;d' -o /dev/null
curl -s -X POST "http://127.0.0.1:$P/api/v1/terminal/resize-window/$id" -d 'rows=10&cols=20' -D "$O/resize.headers" -o "$O/resize.body"
curl -s -X POST "http://127.0.0.1:$P/api/v1/terminal/resize-window/$id/" -d 'rows=10&cols=20' -o "$O/resize-slash.body" -w '%{http_code}\n' > "$O/resize-slash.code"
curl -s "http://127.0.0.1:$P/api/v1/terminal/stream" -m 1 -o "$O/stream-noslash.raw" || true
curl -s -X POST "http://127.0.0.1:$P/api/v1/terminal/send/nosuchid" -d 'data=x' -o "$O/unknown.body" -w '%{http_code}\n' > "$O/unknown.code" || true
wait
