# Runs docker-ssh's unmodified src/webserver.coffee with a stand-in session
# factory whose "shell" writes fixed chunks and echoes what is typed, so the
# exact bytes docker-ssh puts on the wire can be recorded.
webserver = require './webserver'
chunks = [
  "plain text\r\n"
  "quote \" backslash \\ slash / tab \t bell \x07 esc \x1b[1;31m nul \x00 del \x7f\r\n"
  "ctl \x01\x02\x08\x0b\x0c\x0e\x1f\r\n"
  "utf8 h\u00e9llo \u20ac \u4e16\u754c \ud83d\ude00 \u2028 \u2029 \ufeff end"
  "<script>&amp;</script> \u0085 \u00a0"
]
factory = instance: -> handler: (accept) ->
  session = accept()
  session.on 'window-change', (a, r, info) -> undefined
  session.on 'shell', (open) ->
    ch = open()
    ch.write Buffer.from(c).toString() for c in chunks
    ch.on 'data', (d) -> ch.write Buffer.from(d).toString()
    ch.on 'end', -> undefined
webserver.start parseInt(process.env.PORT), factory
