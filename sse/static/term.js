// The web terminal's page: xterm.js on docker-ssh's API. Input is sent one
// POST at a time (keystrokes typed meanwhile go together in the next one),
// so it arrives in order; EventSource reconnects by itself and resumes with
// Last-Event-ID.
"use strict";
(function () {
  const api = "api/v1/terminal/";
  const status = document.getElementById("status");
  const setStatus = (s) => { status.textContent = s; };

  // "#token=..." logs in with a bearer token: it becomes a cookie for this
  // page's path (EventSource cannot send headers) and leaves the address
  // bar. A fragment never reaches a server or its logs.
  // Only RFC 6750 token characters: nothing that could end the cookie's
  // value and add attributes of a link author's choosing.
  const m = /^#token=([A-Za-z0-9._~+\/-]+=*)$/.exec(location.hash);
  if (m) {
    const path = location.pathname.replace(/[^/]*$/, "");
    document.cookie = "dockssh-token=" + m[1] + "; path=" + path + "; SameSite=Strict" +
      (location.protocol === "https:" ? "; Secure" : "");
    history.replaceState(null, "", location.pathname + location.search);
  }

  const term = new Terminal({ cursorBlink: true, scrollback: 5000 });
  const fit = new FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(document.getElementById("terminal"));
  fit.fit();
  term.focus();

  let id = null;       // the session id, from the connectionId event
  let ended = "";      // why the session ended; "" while it runs
  let pending = "";    // input not sent yet
  let sending = false; // a send POST is in flight
  let sizeSent = term.rows + "x" + term.cols;
  let resizes = Promise.resolve();

  // Output arrives as a JSON string; bytes that were not UTF-8 come as
  // the lone surrogates U+DC80..U+DCFF. Turn those back into bytes and let
  // xterm.js decode the rest, across events.
  function output(s) {
    if (!/[\udc80-\udcff]/.test(s)) {
      term.write(s);
      return;
    }
    const b = [];
    for (let i = 0; i < s.length; i++) {
      let c = s.charCodeAt(i);
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
        const d = s.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
        }
      } else if (c >= 0xdc80 && c <= 0xdcff) {
        b.push(c - 0xdc00);
        continue;
      }
      if (c < 0x80) b.push(c);
      else if (c < 0x800) b.push(0xc0 | c >> 6, 0x80 | c & 63);
      else if (c < 0x10000) b.push(0xe0 | c >> 12, 0x80 | c >> 6 & 63, 0x80 | c & 63);
      else b.push(0xf0 | c >> 18, 0x80 | c >> 12 & 63, 0x80 | c >> 6 & 63, 0x80 | c & 63);
    }
    term.write(new Uint8Array(b));
  }

  function end(msg) {
    if (ended) return;
    ended = msg;
    setStatus(msg);
    term.write("\r\n\x1b[2m[" + msg + "]\x1b[0m\r\n");
  }

  function send() {
    if (sending || !pending || id === null || ended) return;
    const data = pending;
    pending = "";
    sending = true;
    fetch(api + "send/" + id, { method: "POST", body: new URLSearchParams({ data: data }) })
      .then((r) => {
        if (r.status === 404) end("session ended");
        else if (!r.ok) setStatus("input refused (" + r.status + ")");
      }, () => {
        pending = data + pending; // the network failed: try again
        return new Promise((ok) => setTimeout(ok, 1000));
      })
      .finally(() => { sending = false; send(); });
  }

  function sendSize() {
    const size = term.rows + "x" + term.cols;
    if (id === null || ended || size === sizeSent) return;
    sizeSent = size;
    const body = new URLSearchParams({ rows: term.rows, cols: term.cols });
    resizes = resizes.then(() => fetch(api + "resize-window/" + id, { method: "POST", body: body }))
      .catch(() => {});
  }

  term.onData((d) => { pending += d; send(); });
  term.onResize(sendSize);
  let timer;
  window.addEventListener("resize", () => {
    clearTimeout(timer);
    timer = setTimeout(() => fit.fit(), 50);
  });

  const es = new EventSource(api + "stream?rows=" + term.rows + "&cols=" + term.cols);
  es.addEventListener("connectionId", (e) => {
    id = e.data;
    setStatus("");
    sendSize();
    send();
  });
  es.addEventListener("data", (e) => output(JSON.parse(e.data)));
  es.addEventListener("lost", (e) => {
    term.write("\r\n\x1b[33m[" + JSON.parse(e.data).bytes + " bytes of output lost]\x1b[0m\r\n");
  });
  es.addEventListener("exit", (e) => {
    es.close();
    const x = JSON.parse(e.data);
    const why = {
      exit: "exited with status " + x.code,
      idle: "closed after inactivity",
      shutdown: "the server shut down",
      error: "the terminal could not be started",
    };
    end(why[x.reason] || "ended (" + x.reason + ")");
  });
  es.onopen = () => { if (!ended) setStatus(""); };
  es.onerror = () => {
    if (ended) return;
    if (es.readyState === EventSource.CLOSED) end("disconnected");
    else setStatus("reconnecting…");
  };

  // For scripts and tests: the terminal, the session and its text.
  window.dockssh = {
    term: term,
    get id() { return id; },
    get ended() { return ended; },
    text: () => {
      const buf = term.buffer.active, lines = [];
      for (let i = 0; i < buf.length; i++) lines.push(buf.getLine(i).translateToString(true));
      return lines.join("\n");
    },
  };
})();
