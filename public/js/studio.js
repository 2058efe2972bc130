// AI Studio page glue: the few behaviours htmx attributes cannot express. No framework, no eval
// (htmx runs with allowEval off), so everything here is wired by data- attributes.
(function () {
  'use strict';

  // ---- toasts ---------------------------------------------------------------------------------
  function toast(title, message, code) {
    var box = document.getElementById('toasts');
    if (!box) return;
    var el = document.createElement('div');
    el.className = 'toast';
    el.setAttribute('role', 'alert');
    el.setAttribute('data-toast', '');
    var head = document.createElement('div');
    head.className = 'title';
    var t = document.createElement('span');
    t.textContent = title;
    var close = document.createElement('button');
    close.type = 'button';
    close.setAttribute('data-close-toast', '');
    close.setAttribute('aria-label', 'Dismiss');
    close.textContent = '×';
    head.append(t, close);
    var body = document.createElement('div');
    body.textContent = message;
    el.append(head, body);
    if (code) {
      var c = document.createElement('div');
      c.className = 'small faint mono';
      c.textContent = code;
      el.append(c);
    }
    box.append(el);
    autoDismiss(el);
  }
  function autoDismiss(el) {
    setTimeout(function () { el.remove(); }, 9000);
  }
  // The other page scripts (training.js, …) show their refusals through the same toast.
  window.studioToast = toast;

  // ---- tabs -----------------------------------------------------------------------------------
  function initTabs(root) {
    root.querySelectorAll('[data-tabs]').forEach(function (tabs) {
      if (tabs.dataset.tabsReady) return;
      tabs.dataset.tabsReady = '1';
      tabs.addEventListener('click', function (e) {
        // A tab, or a link-like button elsewhere in the card that names one (data-tab too).
        var tab = e.target.closest('[data-tab]');
        if (!tab || !tabs.contains(tab)) return;
        tabs.querySelectorAll('[role=tab][data-tab]').forEach(function (t) {
          t.setAttribute('aria-selected', String(t.dataset.tab === tab.dataset.tab));
        });
        tabs.querySelectorAll('[data-panel]').forEach(function (p) {
          p.hidden = p.dataset.panel !== tab.dataset.tab;
        });
      });
    });
  }

  // ---- zip upload with progress ----------------------------------------------------------------
  function initUpload(root) {
    root.querySelectorAll('[data-dropzone]').forEach(function (zone) {
      if (zone.dataset.ready) return;
      zone.dataset.ready = '1';
      var input = zone.querySelector('input[type=file]');
      var name = zone.querySelector('[data-file-name]');
      var show = function () { name.textContent = input.files && input.files[0] ? input.files[0].name : ''; };
      input.addEventListener('change', show);
      zone.addEventListener('dragover', function (e) { e.preventDefault(); zone.classList.add('over'); });
      zone.addEventListener('dragleave', function () { zone.classList.remove('over'); });
      zone.addEventListener('drop', function (e) {
        e.preventDefault();
        zone.classList.remove('over');
        if (e.dataTransfer && e.dataTransfer.files.length) { input.files = e.dataTransfer.files; show(); }
      });
    });
    var form = root.querySelector ? root.querySelector('#upload-form') : null;
    if (!form || form.dataset.ready) return;
    form.dataset.ready = '1';
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      upload(form, form.dataset.upload, function (status, body) {
        if (status === 202 && body && body.status === 'ok') {
          form.reset();
          form.querySelector('[data-file-name]').textContent = '';
          showJob(form.dataset.jobsUrl + encodeURIComponent(body.data.job.id));
          document.body.dispatchEvent(new CustomEvent('datasets-changed'));
        } else if (body && body.error) {
          toast('Upload refused', body.error.message, body.error.code);
        } else {
          toast('Upload failed', status ? 'HTTP ' + status : 'the connection was lost');
        }
      });
    });
  }

  /**
   * Posts a form with a `file` field to a JSON API route, showing upload progress in the form's
   * [data-upload-progress] bar; calls done(status, parsed body or null) when the request ends.
   */
  function upload(form, url, done) {
    var bar = form.querySelector('[data-upload-progress]');
    var fill = bar.firstElementChild;
    var button = form.querySelector('button[type=submit]');
    var data = new FormData(form);
    // The API reads text fields before the file, so the file part goes last.
    var file = data.get('file');
    data.delete('file');
    data.append('file', file);
    var xhr = new XMLHttpRequest();
    xhr.open('POST', url);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.addEventListener('progress', function (ev) {
      if (ev.lengthComputable) fill.style.width = Math.round((ev.loaded / ev.total) * 100) + '%';
    });
    xhr.addEventListener('loadend', function () {
      button.disabled = false;
      bar.hidden = true;
      var body = null;
      try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON: the caller reports the status */ }
      done(xhr.status, body);
    });
    button.disabled = true;
    fill.style.width = '0%';
    bar.hidden = false;
    xhr.send(data);
  }
  window.studioUpload = upload;

  function showJob(url) {
    var empty = document.getElementById('jobs-empty');
    if (empty) empty.remove();
    htmx.ajax('GET', url, { target: '#jobs', swap: 'afterbegin' });
  }

  // ---- live job widgets: htmx's SSE extension swaps the fragments the server renders per event
  // (views/fragments/job.eta); at `end` the widget fetches its final state, whose answer triggers
  // `job-finished` for the lists that follow it.
  function initJobs(root) {
    var empty = document.getElementById('jobs-empty');
    if (empty && root.querySelector && root.querySelector('[data-live]')) empty.remove();
  }

  // Number formats the live pages share.
  window.studioFormat = {
    pct: function (v) { return v === null || v === undefined ? '—' : (v * 100).toFixed(1) + '%'; },
    duration: function (s) {
      if (!isFinite(s) || s < 0) return '—';
      s = Math.round(s);
      if (s < 60) return s + ' s';
      if (s < 3600) return Math.floor(s / 60) + ' min ' + String(s % 60).padStart(2, '0') + ' s';
      return Math.floor(s / 3600) + ' h ' + String(Math.floor((s % 3600) / 60)).padStart(2, '0') + ' min';
    },
  };
  // ---- class histogram -----------------------------------------------------------------------
  var chart = null;
  function initChart(root) {
    var canvas = root.querySelector ? root.querySelector('#class-chart') : null;
    if (!canvas || typeof Chart === 'undefined') return;
    var h = JSON.parse(canvas.dataset.histogram);
    if (chart) chart.destroy();
    var stacked = Boolean(h.subsets);
    var series = stacked
      ? [['train', '#4f46e5'], ['val', '#0e9384'], ['test', '#dc6803'], ['none', '#d0d5dd']]
          .filter(function (s) { return h.subsets[s[0]].some(function (n) { return n > 0; }); })
          .map(function (s) { return { label: s[0], data: h.subsets[s[0]], backgroundColor: s[1], borderRadius: 3, maxBarThickness: 28 }; })
      : [{ label: 'images', data: h.counts, backgroundColor: '#6366f1', borderRadius: 4, maxBarThickness: 28 }];
    chart = new Chart(canvas, {
      type: 'bar',
      data: { labels: h.labels, datasets: series },
      options: {
        indexAxis: h.labels.length > 8 ? 'y' : 'x',
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: { legend: { display: stacked, position: 'bottom', labels: { boxWidth: 10, boxHeight: 10, font: { size: 11 } } } },
        scales: {
          x: { stacked: stacked, grid: { display: false }, ticks: { color: '#475467', font: { size: 11 } } },
          y: { stacked: stacked, beginAtZero: true, grid: { color: '#f2f4f7' }, ticks: { color: '#475467', font: { size: 11 }, precision: 0 } },
        },
      },
    });
  }

  // ---- small bar charts: label cardinality, target histograms ---------------------------------
  // A canvas with data-bar-chart='{"labels":[…],"counts":[…],"series":"images","x":"…"}'.
  var barCharts = [];
  function initBarCharts(root) {
    if (!root.querySelectorAll || typeof Chart === 'undefined') return;
    var canvases = root.querySelectorAll('canvas[data-bar-chart]');
    if (!canvases.length) return;
    barCharts = barCharts.filter(function (c) {
      if (document.body.contains(c.canvas)) return true;
      c.destroy();
      return false;
    });
    canvases.forEach(function (canvas) {
      var d;
      try { d = JSON.parse(canvas.dataset.barChart); } catch (_) { return; }
      var existing = Chart.getChart ? Chart.getChart(canvas) : null;
      if (existing) existing.destroy();
      barCharts.push(new Chart(canvas, {
        type: 'bar',
        data: { labels: d.labels, datasets: [{ label: d.series || 'images', data: d.counts, backgroundColor: d.color || '#6366f1', borderRadius: 3, barPercentage: d.histogram ? 1 : 0.9, categoryPercentage: d.histogram ? 1 : 0.8, maxBarThickness: 40 }] },
        options: {
          responsive: true,
          maintainAspectRatio: false,
          animation: false,
          plugins: { legend: { display: false } },
          scales: {
            x: { grid: { display: false }, title: { display: Boolean(d.x), text: d.x || '', color: '#475467', font: { size: 11 } }, ticks: { color: '#475467', font: { size: 10 }, maxRotation: 0, autoSkip: true } },
            y: { beginAtZero: true, grid: { color: '#f2f4f7' }, ticks: { color: '#475467', font: { size: 11 }, precision: 0 } },
          },
        },
      }));
    });
  }

  // ---- new-dataset forms: the fields of the task chosen ----------------------------------------
  // [data-task-only="a b"] shows for those tasks only, [data-task-except="a"] for all but those;
  // a hidden field is disabled too, so it is not posted.
  function syncTaskFields(form) {
    var sel = form.querySelector('[data-task-select]');
    if (!sel) return;
    var task = sel.value;
    form.querySelectorAll('[data-task-only], [data-task-except]').forEach(function (el) {
      var only = el.dataset.taskOnly ? el.dataset.taskOnly.split(/\s+/) : null;
      var except = el.dataset.taskExcept ? el.dataset.taskExcept.split(/\s+/) : [];
      var show = (only === null || only.indexOf(task) !== -1) && except.indexOf(task) === -1;
      el.hidden = !show;
      el.querySelectorAll('input, select, textarea').forEach(function (f) { f.disabled = !show; });
    });
  }
  function initTaskFields(root) {
    if (!root.querySelectorAll) return;
    root.querySelectorAll('[data-task-select]').forEach(function (sel) {
      var form = sel.closest('form');
      if (!form || form.dataset.taskReady) return;
      form.dataset.taskReady = '1';
      sel.addEventListener('change', function () { syncTaskFields(form); });
      // reset() restores the select after the fields were synced: sync once it is done.
      form.addEventListener('reset', function () { setTimeout(function () { syncTaskFields(form); }, 0); });
      syncTaskFields(form);
    });
  }

  // ---- the image viewer: ← and → step to the previous and next image ------------------------------
  document.addEventListener('keydown', function (e) {
    if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
    var t = e.target;
    if (t && (t.isContentEditable || /^(INPUT|SELECT|TEXTAREA)$/.test(t.tagName))) return;
    var button = document.querySelector('#modal ' + (e.key === 'ArrowLeft' ? '[data-image-prev]' : '[data-image-next]'));
    if (button && !button.disabled) { e.preventDefault(); button.click(); }
  });

  // ---- modal and toasts: close ---------------------------------------------------------------
  function closeModal() {
    var m = document.getElementById('modal');
    if (m) m.innerHTML = '';
  }
  document.addEventListener('click', function (e) {
    if (e.target.closest('[data-close-modal]') || (e.target.matches && e.target.matches('[data-modal]'))) closeModal();
    var t = e.target.closest('[data-close-toast]');
    if (t) t.closest('[data-toast]').remove();
  });
  document.addEventListener('keydown', function (e) { if (e.key === 'Escape') closeModal(); });

  // ---- copy a value (a sha256) to the clipboard: [data-copy="…"], its [data-copy-label] says so ----
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    var area = document.createElement('textarea');
    area.value = text;
    area.setAttribute('readonly', '');
    area.style.position = 'fixed';
    area.style.opacity = '0';
    document.body.append(area);
    area.select();
    try { document.execCommand('copy'); } finally { area.remove(); }
    return Promise.resolve();
  }
  document.addEventListener('click', function (e) {
    var b = e.target.closest('[data-copy]');
    if (!b) return;
    var label = b.querySelector('[data-copy-label]');
    copyText(b.dataset.copy).then(function () {
      if (!label) return;
      label.textContent = 'Copied';
      setTimeout(function () { label.textContent = 'Copy'; }, 1500);
    }, function () { if (label) label.textContent = 'Select it'; });
  });

  // A form's error slot ([data-clear-on-request="#slot"]) empties when the form is sent again.
  document.addEventListener('htmx:beforeRequest', function (e) {
    var elt = e.detail.elt;
    var sel = elt && elt.dataset && elt.dataset.clearOnRequest;
    var slot = sel && document.querySelector(sel);
    if (slot) slot.innerHTML = '';
  });

  // Forms that create something start empty again once it was created.
  document.addEventListener('htmx:afterRequest', function (e) {
    var elt = e.detail.elt;
    if (e.detail.successful && elt && elt.matches && elt.matches('form[data-reset-on-success]')) elt.reset();
  });

  function init(root) {
    initTabs(root);
    initUpload(root);
    initJobs(root);
    initChart(root);
    initBarCharts(root);
    initTaskFields(root);
    if (root.querySelectorAll) root.querySelectorAll('[data-toast]').forEach(autoDismiss);
    if (root.matches && root.matches('[data-toast]')) autoDismiss(root);
  }

  // Deferred scripts run before htmx's DOMContentLoaded start-up, which fires htmx:load on <body>.
  htmx.onLoad(init);
  // Network failures (server down) never reach a response handler.
  document.addEventListener('htmx:sendError', function () { toast('Connection lost', 'The studio did not answer. Is it still running?'); });
})();
