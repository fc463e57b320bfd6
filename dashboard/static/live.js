// keapsync dashboard: live fragments. A signal (Supabase Realtime broadcast, or Server-Sent
// Events fed by LISTEN keapsync) names what changed; each element with data-live listening for
// that kind is fetched again from the server (?fragment=name) and swapped in. No polling.
(function () {
  'use strict';
  var body = document.body;
  var mode = body.dataset.liveMode;
  var account = body.dataset.account;
  var statusEl = document.getElementById('live-status');
  function status(msg) { if (statusEl) statusEl.textContent = msg; }

  // Forms: confirmation, and a busy state so a double click does not post twice.
  document.addEventListener('submit', function (e) {
    var f = e.target;
    var btn = e.submitter || f.querySelector('button');
    var q = (btn && btn.dataset.confirm) || f.dataset.confirm;
    if (q && !window.confirm(q)) { e.preventDefault(); return; }
    if (f.method.toLowerCase() === 'post') {
      f.setAttribute('aria-busy', 'true');
      setTimeout(function () { f.querySelectorAll('button').forEach(function (b) { b.disabled = true; }); }, 0);
    }
  });
  document.querySelectorAll('select[data-autosubmit]').forEach(function (s) {
    s.addEventListener('change', function () { s.form.submit(); });
  });

  if (!mode || !account || !document.querySelector('[data-live]')) return;

  var pending = new Set();
  var timer = null;
  function onSignal(msg) {
    var keys;
    if (msg.kind === 'resync') {
      keys = null;
    } else {
      if (msg.account_id !== account) return;
      keys = [msg.kind];
      if (msg.kind === 'data' && msg.table) keys.push('data.' + msg.table);
    }
    document.querySelectorAll('[data-live]').forEach(function (el) {
      var ks = el.dataset.live.split(' ');
      if (!keys || keys.some(function (k) { return ks.indexOf(k) >= 0; })) pending.add(el.id);
    });
    // Coalesce a burst (a bulk load signals once per statement, but statements come in runs).
    if (!timer && pending.size) timer = setTimeout(flush, 250);
  }

  function flush() {
    timer = null;
    var ids = Array.from(pending);
    pending.clear();
    ids.forEach(function (id) {
      var el = document.getElementById(id);
      if (!el) return;
      // Never yank a control from under the keyboard: try again once focus has left.
      if (el.contains(document.activeElement) && document.activeElement !== document.body) {
        pending.add(id);
        if (!timer) timer = setTimeout(flush, 2000);
        return;
      }
      var u = new URL(window.location.href);
      u.searchParams.set('fragment', el.dataset.fragment);
      el.setAttribute('aria-busy', 'true');
      fetch(u.toString(), { credentials: 'same-origin', headers: { Accept: 'text/html' } })
        .then(function (r) {
          if (r.status === 401) { window.location.reload(); return null; }
          if (!r.ok) throw new Error('HTTP ' + r.status);
          return r.text();
        })
        .then(function (html) {
          if (html === null) return;
          var t = document.createElement('template');
          t.innerHTML = html.trim();
          var n = t.content.firstElementChild;
          if (n && n.id === id) el.replaceWith(n);
          status('');
          body.dataset.liveUpdates = String(Number(body.dataset.liveUpdates || 0) + 1);
        })
        .catch(function () {
          el.removeAttribute('aria-busy');
          status('A live update failed. Reload the page to see the latest.');
        });
    });
  }

  if (mode === 'sse') {
    var es = new EventSource('/live/events');
    es.addEventListener('open', function () { body.dataset.live = 'on'; status(''); });
    es.addEventListener('signal', function (ev) {
      try { onSignal(JSON.parse(ev.data)); } catch (e) { /* not ours */ }
    });
    es.addEventListener('error', function () {
      body.dataset.live = 'off';
      status(es.readyState === EventSource.CLOSED ? 'Live updates stopped. Reload the page.' : 'Reconnecting live updates…');
    });
    return;
  }

  // Supabase Realtime: a private broadcast channel keapsync:<account>, Phoenix protocol 1.0.0.
  var backoff = 1000, joined = false;
  function getToken() {
    return fetch('/live/token', { credentials: 'same-origin' }).then(function (r) {
      if (!r.ok) throw new Error('token ' + r.status);
      return r.json();
    });
  }
  function connect() {
    getToken().then(function (tok) {
      var ws = new WebSocket(body.dataset.realtimeSocket + '?apikey=' + encodeURIComponent(body.dataset.apikey) + '&vsn=1.0.0');
      var topic = 'realtime:keapsync:' + account;
      var ref = 0, hb = null, renew = null;
      function send(f) { f.ref = String(++ref); if (ws.readyState === 1) ws.send(JSON.stringify(f)); }
      function scheduleRenew(exp) {
        var ms = Math.max(30000, exp * 1000 - Date.now() - 120000);
        renew = setTimeout(function () {
          getToken().then(function (t) {
            send({ topic: topic, event: 'access_token', payload: { access_token: t.access_token } });
            scheduleRenew(t.expires_at);
          }).catch(function () { ws.close(); });
        }, ms);
      }
      ws.onopen = function () {
        send({ topic: topic, event: 'phx_join', join_ref: '1', payload: {
          config: { broadcast: { self: false, ack: false }, presence: { key: '', enabled: false }, postgres_changes: [], private: true },
          access_token: tok.access_token } });
        hb = setInterval(function () { send({ topic: 'phoenix', event: 'heartbeat', payload: {} }); }, 25000);
        scheduleRenew(tok.expires_at);
      };
      ws.onmessage = function (m) {
        var f;
        try { f = JSON.parse(m.data); } catch (e) { return; }
        if (f.topic !== topic) return;
        if (f.event === 'phx_reply' && f.ref === '1') {
          if (f.payload && f.payload.status === 'ok') { backoff = 1000; body.dataset.live = 'on'; status('');
            // After a reconnect, signals may have been missed: refetch everything once.
            if (joined) onSignal({ kind: 'resync' });
            joined = true; }
          else status('Live updates were refused for this account.');
        } else if (f.event === 'broadcast' && f.payload && f.payload.payload) {
          onSignal(f.payload.payload);
        }
      };
      ws.onclose = function () {
        clearInterval(hb); clearTimeout(renew);
        body.dataset.live = 'off';
        status('Reconnecting live updates…');
        setTimeout(connect, backoff);
        backoff = Math.min(backoff * 2, 30000);
      };
    }).catch(function () {
      status('Live updates unavailable. Reload the page to see the latest.');
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 30000);
    });
  }
  connect();
})();
