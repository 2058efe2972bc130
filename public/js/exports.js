// AI Studio deploy page: a running export's progress over SSE, and "Try it" — an image dropped or
// chosen is posted to the export's predict route and its top-5 predictions drawn as bars. Wired by
// data- attributes, no eval; every server string lands in the page through textContent.
(function () {
  'use strict';

  function each(root, sel, fn) {
    if (root.matches && root.matches(sel)) fn(root);
    if (root.querySelectorAll) Array.prototype.forEach.call(root.querySelectorAll(sel), fn);
  }
  function parse(text, fallback) {
    try { return JSON.parse(text); } catch (_) { return fallback; }
  }
  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = String(text);
    return n;
  }

  // ---- a running export: progress over SSE (studio.js follows the job), then the board again ----
  function initProgress(root) {
    each(root, '#export-progress', function (box) {
      var stepEl = box.querySelector('[data-export-step]');
      window.studioFollowJob(box, {
        board: '#exports',
        bar: '[data-export-bar]',
        percent: '[data-export-pct]',
        status: '[data-export-status]',
        running: 'running',
        on: {
          // The worker names what it is doing in its log lines; the latest one is the step shown.
          log: function (ev) {
            var m = parse(ev.data, null);
            if (m && typeof m.message === 'string' && stepEl) stepEl.textContent = m.message.charAt(0).toUpperCase() + m.message.slice(1);
          },
        },
      });
    });
  }

  // ---- Try it -----------------------------------------------------------------------------------
  function showError(box, message, code) {
    var out = box.querySelector('[data-try-result]');
    out.replaceChildren();
    var alert = el('div', 'alert error');
    var body = el('div');
    body.append(el('b', null, 'Prediction refused.'), document.createTextNode(' ' + message.charAt(0).toUpperCase() + message.slice(1)));
    if (code) { body.append(el('br'), el('span', 'code', code)); }
    alert.append(body);
    out.append(alert);
  }

  function showPredictions(box, data) {
    var out = box.querySelector('[data-try-result]');
    out.replaceChildren();
    // One image posted: `predictions` is its top-5 (a batch would give one list per image).
    var preds = Array.isArray(data.predictions) && Array.isArray(data.predictions[0]) ? data.predictions[0] : data.predictions || [];
    var head = el('div', 'try-meta small muted');
    head.append(el('span', 'badge plain mono', data.variant), document.createTextNode(' · ' + Number(data.latency_ms).toFixed(1) + ' ms'));
    var list = el('ol', 'topk try-topk');
    list.id = 'try-topk';
    preds.slice(0, 5).forEach(function (p, i) {
      var percent = Math.round(Number(p.score) * 1000) / 10;
      var li = el('li', i === 0 ? 'is-top' : '');
      var row = el('div', 'topk-head');
      row.append(el('span', 'truncate', p.label), el('span', 'num', percent.toFixed(1) + '%'));
      li.title = p.label;
      var bar = el('div', 'conf-bar');
      var fill = el('div');
      fill.style.width = percent + '%';
      bar.append(fill);
      li.append(row, bar);
      list.append(li);
    });
    out.append(head, list);
  }

  function predict(box, file) {
    var preview = box.querySelector('[data-try-preview]');
    if (preview.dataset.url) URL.revokeObjectURL(preview.dataset.url);
    preview.dataset.url = URL.createObjectURL(file);
    var img = preview.querySelector('img') || preview.appendChild(el('img'));
    img.alt = file.name;
    img.src = preview.dataset.url;
    // A file the browser cannot show (the server decides what it accepts) leaves the hint in view.
    img.onerror = function () { preview.classList.remove('has-image'); };
    preview.classList.add('has-image');
    box.querySelector('[data-try-name]').textContent = file.name;
    var out = box.querySelector('[data-try-result]');
    out.replaceChildren(el('span', 'spinner'), document.createTextNode(' Predicting…'));
    box.classList.add('busy');

    var form = new FormData();
    var variant = box.querySelector('[data-try-variant]');
    var url = box.dataset.predictUrl + (variant && variant.value ? '?variant=' + encodeURIComponent(variant.value) : '');
    form.append(box.dataset.field || 'image', file, file.name);
    fetch(url, { method: 'POST', body: form, headers: { Accept: 'application/json' } })
      .then(function (res) {
        return res.text().then(function (text) {
          var body = parse(text, null);
          if (body && body.status === 'ok') return showPredictions(box, body.data);
          var err = body && body.error ? body.error : { message: 'the studio answered ' + res.status, code: '' };
          showError(box, err.message, err.code);
        });
      })
      .catch(function () { showError(box, 'The studio did not answer. Is it still running?', ''); })
      .then(function () { box.classList.remove('busy'); });
  }

  function initTry(root) {
    each(root, '[data-try]', function (box) {
      if (box.dataset.ready) return;
      box.dataset.ready = '1';
      var zone = box.querySelector('[data-try-drop]');
      var input = box.querySelector('input[type=file]');
      var last = null;
      input.addEventListener('change', function () {
        if (input.files && input.files[0]) predict(box, (last = input.files[0]));
      });
      zone.addEventListener('dragover', function (e) { e.preventDefault(); zone.classList.add('over'); });
      zone.addEventListener('dragleave', function () { zone.classList.remove('over'); });
      zone.addEventListener('drop', function (e) {
        e.preventDefault();
        zone.classList.remove('over');
        if (e.dataTransfer && e.dataTransfer.files.length) predict(box, (last = e.dataTransfer.files[0]));
      });
      // Another variant, the same image: predicted again, so the variants can be compared.
      var variant = box.querySelector('[data-try-variant]');
      if (variant) variant.addEventListener('change', function () { if (last) predict(box, last); });
    });
  }

  function init(root) {
    initProgress(root);
    initTry(root);
  }

  htmx.onLoad(init);
})();
