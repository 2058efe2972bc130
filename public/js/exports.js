// AI Studio deploy page: "Try it" — an image dropped or
// chosen is posted to the export's predict route and the answer drawn by the export's task's partial. Wired by
// data- attributes, no eval; server strings land through textContent, or as HTML the server rendered (and escaped).
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

  // A running export's box follows its job through htmx's SSE extension: the server renders each
  // progress and log event (views/fragments/export-progress.eta) and, at `end`, the board comes again.

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

  // The export's task draws its answer: the API's JSON goes to the page route, which renders
  // views/tasks/<task>/predict-answer.eta (server-escaped HTML, swapped in as htmx would).
  function showPredictions(box, data) {
    var out = box.querySelector('[data-try-result]');
    var body = JSON.stringify({ variant: data.variant, latency_ms: Number(data.latency_ms) || 0, answer: data.answer !== undefined ? data.answer : (data.answers || [])[0] });
    return fetch(box.dataset.answerUrl, { method: 'POST', body: body, headers: { 'Content-Type': 'application/json', Accept: 'text/html', 'HX-Request': 'true' } })
      .then(function (res) {
        return res.text().then(function (html) {
          if (!res.ok) return showError(box, 'the answer could not be drawn (' + res.status + ')', '');
          out.innerHTML = html;
          if (window.htmx) htmx.process(out);
        });
      });
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
    initTry(root);
  }

  htmx.onLoad(init);
})();
