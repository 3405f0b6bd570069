// haven console: one page, vanilla JavaScript, no dependency and no network but this origin.
//
// The console signs in with POST /api/v1/auth/login and keeps the token pair in this tab's
// sessionStorage; every call sends the access token as a bearer token (no cookie, so a page
// on another site cannot make the browser act), refreshes it before it expires and once on
// a 401. Every action is the api route an operator would call with curl, under the same
// guard and audit. Buttons appear only for the permissions `whoami` lists, and every button
// that changes something carries `data-action` (the browser tests count them).
'use strict';

(() => {
  const API = '/api/v1';
  const TOKENS = 'haven.console.tokens';
  const STATUS_REFRESH_MS = 5000;
  let me = null;
  let timer = null;
  let generation = 0;

  const $ = (id) => document.getElementById(id);

  // ---- DOM -------------------------------------------------------------------------------

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  function table(caption, columns, rows, cells) {
    if (!rows.length) return h('p', { class: 'muted' }, `${caption}: none.`);
    return h('div', { class: 'table-wrap', role: 'region', 'aria-label': caption, tabindex: 0 },
      h('table', {},
        h('caption', {}, caption),
        h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, rows.map((r) => h('tr', {}, cells(r).map((c, i) => {
          const td = c instanceof Node && c.tagName === 'TD' ? c : h('td', {}, c);
          td.dataset.label = columns[i]; // the column's name beside the value on a phone
          return td;
        }))))));
  }

  function field(id, label, input) {
    input.id = id;
    if (!input.name) input.name = id;
    return h('div', {}, h('label', { for: id }, label), input);
  }

  function select(options, value) {
    return h('select', {}, options.map(([v, text]) =>
      h('option', { value: v, selected: v === value }, text)));
  }

  function facts(pairs) {
    return h('dl', { class: 'facts' }, pairs.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '—')]));
  }

  function card(label, value, cls) {
    return h('div', { class: 'card' }, h('p', { class: 'muted' }, label), h('p', { class: `big ${cls || ''}` }, value));
  }

  function when(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    return h('time', { datetime: iso }, d.toISOString().replace('T', ' ').slice(0, 19) + ' UTC');
  }

  function ago(seconds) {
    if (seconds === null || seconds === undefined) return '—';
    const s = Math.round(seconds);
    if (s < 120) return `${s} s`;
    if (s < 7200) return `${Math.round(s / 60)} min`;
    return `${Math.round(s / 3600)} h`;
  }

  function stateTag(state) {
    const s = String(state).toLowerCase();
    const good = ['closed', 'confirmed', 'resolved', 'false_positive', 'paid', 'approved', 'delivered'];
    const bad = ['open', 'forced_open', 'failed', 'failed_needs_review', 'rejected', 'critical', 'high', 'dead'];
    const cls = good.includes(s) ? 'state-good' : bad.includes(s) ? 'state-bad' : 'state-warn';
    return h('span', { class: cls }, state);
  }

  function flash(message, ok) {
    const el = $('flash');
    el.className = `flash ${ok ? 'ok' : 'bad'}`;
    el.textContent = message;
  }

  function describe(err) {
    if (err instanceof ApiError && err.body) {
      const b = err.body;
      const ref = b.request_id ? ` (request ${b.request_id})` : '';
      return `${b.error || err.status}: ${b.message || ''}${ref}`;
    }
    return String(err && err.message ? err.message : err);
  }

  // ---- tokens and calls --------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.message) || `HTTP ${status}`);
      this.status = status;
      this.body = body;
    }
  }

  function tokens() {
    try { return JSON.parse(sessionStorage.getItem(TOKENS)); } catch { return null; }
  }

  function keep(pair) {
    sessionStorage.setItem(TOKENS, JSON.stringify({
      access: pair.access_token,
      refresh: pair.refresh_token,
      session: pair.session_id,
      expires: Date.now() + pair.expires_in * 1000,
    }));
  }

  function forget() { sessionStorage.removeItem(TOKENS); }

  function newKey() {
    const b = crypto.getRandomValues(new Uint8Array(16));
    return 'console-' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  let refreshing = null;
  function refresh() {
    const t = tokens();
    if (!t) return Promise.resolve(false);
    if (!refreshing) {
      refreshing = fetch(`${API}/auth/refresh`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ refresh_token: t.refresh }),
      }).then(async (res) => {
        if (!res.ok) return false;
        keep(await res.json());
        return true;
      }).catch(() => false).finally(() => { refreshing = null; });
    }
    return refreshing;
  }

  async function call(method, path, body, options) {
    const idempotencyKey = options && options.idempotent ? newKey() : null;
    if (!tokens()) throw new ApiError(401, { message: 'not signed in' });
    if (tokens().expires - Date.now() < 60000) await refresh();
    const send = () => {
      const headers = { authorization: `Bearer ${tokens().access}` };
      if (body !== undefined) headers['content-type'] = 'application/json';
      // the same key on the retry after a refresh: the api answers it once
      if (idempotencyKey) headers['idempotency-key'] = idempotencyKey;
      return fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    };
    let res = await send();
    if (res.status === 401 && await refresh()) res = await send();
    if (res.status === 401) {
      signedOut('Your session has ended: sign in again.');
      throw new ApiError(401, { message: 'signed out' });
    }
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = { message: text }; }
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  }

  const can = (permission) => !!me && me.permissions.includes(permission);

  // A button that changes something: shown only with `permission`, disabled while it runs,
  // the outcome in the status line, then the page drawn again.
  function action(label, permission, run, options) {
    if (!can(permission)) return null;
    const button = h('button', {
      type: 'button',
      class: (options && options.cls) || null,
      'data-action': (options && options.name) || label.toLowerCase().replace(/\W+/g, '-'),
      'aria-label': (options && options.aria) || null,
    }, label);
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        const done = await run();
        await route();
        flash(done || `${label}: done.`, true);
      } catch (err) {
        flash(`${label} failed: ${describe(err)}`, false);
        button.disabled = false;
      }
    });
    return button;
  }

  // Two steps for what is hard to undo: the first click shows what will happen and a
  // confirmation button.
  function guarded(label, permission, warning, run, options) {
    if (!can(permission)) return null;
    const holder = h('span', { class: 'actions' });
    const open = h('button', { type: 'button', class: 'quiet' }, `${label}…`);
    open.addEventListener('click', () => {
      const confirm = action(`Confirm: ${label}`, permission, run, {
        cls: 'danger', name: options && options.name, aria: options && options.aria,
      });
      const cancel = h('button', { type: 'button', class: 'quiet' }, 'Cancel');
      const panel = h('div', { class: 'confirm', role: 'group', 'aria-label': `Confirm ${label}` },
        h('p', {}, warning), h('div', { class: 'actions' }, confirm, cancel));
      cancel.addEventListener('click', () => { panel.remove(); open.hidden = false; open.focus(); });
      open.hidden = true;
      holder.append(panel);
      confirm.focus();
    });
    holder.append(open);
    return holder;
  }

  function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
    const s = q.toString();
    return s ? `?${s}` : '';
  }

  function go(page, params) { location.hash = `#/${page}${query(params || {})}`; }

  function formValues(form) {
    const out = {};
    for (const [k, v] of new FormData(form).entries()) if (String(v).trim() !== '') out[k] = String(v).trim();
    return out;
  }

  function toIso(local) {
    if (!local) return undefined;
    const d = new Date(local);
    return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
  }

  // ---- pages ---------------------------------------------------------------------------------

  async function statusPage(root) {
    const s = await call('GET', '/admin/status');
    const auto = h('input', { type: 'checkbox', id: 'auto-refresh', checked: sessionStorage.getItem('haven.console.manual') !== '1' });
    auto.addEventListener('change', () => {
      sessionStorage.setItem('haven.console.manual', auto.checked ? '0' : '1');
      if (auto.checked) route(); else clearTimeout(timer);
    });
    const tx = s.transactions;
    root.append(
      h('div', { class: 'actions' }, auto, h('label', { for: 'auto-refresh' }, 'Refresh every 5 seconds'),
        h('span', { class: 'muted' }, 'Generated ', when(s.generated_at))),
      h('h2', {}, 'Transactions'),
      h('div', { class: 'cards' },
        card('Pending (queued, signed, broadcast)', tx.pending),
        card(`Stuck (no receipt after ${tx.stuck_after_secs} s)`, tx.stuck, tx.stuck ? 'state-bad' : ''),
        card('Failed', tx.failed, tx.failed ? 'state-bad' : ''),
        card('Postgres pool in use', `${s.db_pool.in_use} of ${s.db_pool.open} (max ${s.db_pool.max})`)),
      h('h2', {}, 'Outboxes'),
      table('Outbox backlogs', ['Outbox', 'Pending', 'Oldest waiting'], s.outboxes,
        (o) => [o.outbox, h('td', { class: 'num' }, o.pending), ago(o.oldest_age_seconds)]),
      h('h2', {}, 'Circuit breakers'),
      table('Breakers of the answering api process', ['Breaker', 'State'], s.breakers,
        (b) => [b.name, stateTag(b.state)]));
    if (auto.checked) timer = setTimeout(route, STATUS_REFRESH_MS);
  }

  const ALERT_NEXT = { open: [['acknowledged', 'Acknowledge']], acknowledged: [['resolved', 'Resolve'], ['false_positive', 'False positive']] };

  function transition(id, to, note) {
    return call('POST', `/admin/alerts/${encodeURIComponent(id)}/transition`, { to, note: note || 'reviewed in the console' });
  }

  function alertFilters(params) {
    const form = h('form', { class: 'filters', 'aria-label': 'Filter alerts' },
      field('f-severity', 'Severity', select([['', 'any'], ['low', 'low'], ['medium', 'medium'], ['high', 'high'], ['critical', 'critical']], params.severity || '')),
      field('f-state', 'State', select([['', 'any'], ['open', 'open'], ['acknowledged', 'acknowledged'], ['resolved', 'resolved'], ['false_positive', 'false positive']], params.state || '')),
      field('f-type', 'Type', h('input', { name: 'event_type', value: params.event_type || '', placeholder: 'velocity' })),
      field('f-member', 'Member', h('input', { name: 'member', value: params.member || '' })),
      field('f-since', 'Raised from', h('input', { type: 'datetime-local', name: 'since', value: params.since_local || '' })),
      field('f-until', 'Raised before', h('input', { type: 'datetime-local', name: 'until', value: params.until_local || '' })),
      field('f-q', 'Search', h('input', { type: 'search', name: 'q', value: params.q || '', maxlength: 200 })),
      h('div', {}, h('button', { type: 'submit' }, 'Apply filters')));
    form.querySelector('#f-severity').name = 'severity';
    form.querySelector('#f-state').name = 'state';
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const v = formValues(form);
      go('alerts', { ...v, since: undefined, until: undefined, since_local: v.since, until_local: v.until });
    });
    return form;
  }

  function reviewCell(alert) {
    const next = ALERT_NEXT[alert.state] || [];
    if (!next.length || !can('alerts:review')) return h('td', {}, alert.reviewed_by ? `by ${alert.reviewed_by}` : '');
    const note = h('input', { type: 'text', id: `note-${alert.id}`, maxlength: 4000 });
    return h('td', {}, h('div', { class: 'actions' },
      h('label', { for: note.id, class: 'visually-hidden' }, `Note on alert ${alert.id}`), note,
      next.map(([to, label]) => action(label, 'alerts:review', async () => {
        await transition(alert.id, to, note.value.trim());
        return `Alert ${alert.id.slice(0, 8)}… is ${to.replace('_', ' ')}.`;
      }, { name: `alert-${to}`, aria: `${label} alert ${alert.id}` }))));
  }

  async function heldRewards() {
    if (!can('members:read')) return [];
    const [held, open, acknowledged] = await Promise.all([
      call('GET', '/admin/rewards?state=held&limit=100'),
      call('GET', '/admin/alerts?state=open&limit=500'),
      call('GET', '/admin/alerts?state=acknowledged&limit=500'),
    ]);
    const states = new Map([...open, ...acknowledged].map((a) => [a.id, a.state]));
    const decide = (r, approve) => async () => {
      const note = approve ? 'held reward approved in the console' : 'held reward rejected in the console';
      if ((states.get(r.alert_id) || 'open') === 'open') await transition(r.alert_id, 'acknowledged', note);
      await transition(r.alert_id, approve ? 'false_positive' : 'resolved', note);
      return approve ? `Reward of ${r.amount_hnv} HNV approved: it will be minted.` : `Reward of ${r.amount_hnv} HNV rejected.`;
    };
    return [h('h2', {}, 'Held rewards'),
      h('p', { class: 'muted' }, 'Approving reviews the reward\'s alert as a false positive (the reward is minted); rejecting resolves it as fraud (never minted).'),
      table('Rewards held for review', ['Recorded', 'Member', 'Amount (HNV)', 'Reason', 'Alert state', 'Decision'], held.rewards,
        (r) => [when(r.created_at), h('code', {}, r.member_id), h('td', { class: 'num' }, r.amount_hnv), r.reason || '',
          stateTag(states.get(r.alert_id) || 'reviewed'),
          h('div', { class: 'actions' },
            action('Approve reward', 'alerts:review', decide(r, true), { name: 'reward-approve', aria: `Approve reward ${r.id}` }),
            action('Reject reward', 'alerts:review', decide(r, false), { name: 'reward-reject', cls: 'danger', aria: `Reject reward ${r.id}` }))])];
  }

  async function alertsPage(root, params) {
    const q = { ...params, since: toIso(params.since_local), until: toIso(params.until_local), since_local: undefined, until_local: undefined };
    const alerts = await call('GET', `/admin/alerts${query({ ...q, limit: 100 })}`);
    root.append(alertFilters(params),
      table('Alerts, newest first', ['Raised', 'Severity', 'Type', 'State', 'Member', 'Description', 'Notes', 'Review'], alerts,
        (a) => [when(a.created_at), stateTag(a.severity), a.event_type, stateTag(a.state), a.user ? h('code', {}, a.user) : '—',
          a.description, a.notes.map((n) => h('p', {}, `${n.author}: ${n.text}`)), reviewCell(a)]),
      h('div', {}, await heldRewards()));
  }

  function txRow(t) {
    return [h('a', { href: `#/transactions${query({ tx: t.tx_id })}` }, t.tx_id), t.kind, stateTag(t.stuck ? 'stuck' : t.status),
      t.nonce ?? '—', h('td', { class: 'num' }, t.amount), t.attempts, t.replacements, t.error || '', when(t.updated_at)];
  }

  const TX_COLUMNS = ['Transaction', 'Kind', 'Status', 'Nonce', 'Amount (base units)', 'Attempts', 'Replacements', 'Error', 'Updated'];

  async function txDetail(id) {
    const t = await call('GET', `/admin/transactions/${encodeURIComponent(id)}`);
    return [h('h2', {}, `Transaction ${t.tx_id}`), facts([
      ['Status', stateTag(t.stuck ? 'stuck' : t.status)], ['Kind', t.kind], ['Chain', t.chain_id], ['Token', h('code', {}, t.token)],
      ['From', h('code', {}, t.from)], ['To', t.to && h('code', {}, t.to)], ['Holder', t.holder && h('code', {}, t.holder)],
      ['Amount (base units)', t.amount], ['Nonce', t.nonce], ['Hash', t.hash && h('code', {}, t.hash)],
      ['Replaced hashes', t.previous_hashes.length ? t.previous_hashes.map((x) => h('code', {}, x, ' ')) : 'none'],
      ['Gas limit', t.gas_limit], ['Max fee per gas (wei)', t.max_fee_per_gas], ['Priority fee (wei)', t.max_priority_fee_per_gas],
      ['Attempts', t.attempts], ['Replacements', t.replacements], ['Error', t.error], ['Block', t.block_number],
      ['Created', when(t.created_at)], ['Broadcast', when(t.broadcast_at)], ['Confirmed', when(t.confirmed_at)],
    ]), t.status === 'failed' ? retryButton(t) : null];
  }

  function retryButton(t) {
    return action('Retry', 'transactions:retry', async () => {
      await call('POST', `/admin/transactions/${encodeURIComponent(t.tx_id)}/retry`, undefined, { idempotent: true });
      return `Transaction ${t.tx_id} is queued again: the worker signs and sends it with a new nonce.`;
    }, { name: 'transaction-retry', aria: `Retry transaction ${t.tx_id}` });
  }

  async function transactionsPage(root, params) {
    const report = await call('GET', '/admin/transactions/status?limit=100');
    const status = params.status || 'broadcast';
    const listed = await call('GET', `/admin/transactions${query({ status, limit: 100 })}`);
    const lookup = h('form', { class: 'inline', 'aria-label': 'Find a transaction' },
      field('tx-id', 'Transaction id', h('input', { name: 'tx', value: params.tx || '' })),
      field('tx-status', 'List status', select(['queued', 'signed', 'broadcast', 'confirmed', 'failed', 'replaced'].map((s) => [s, s]), status)),
      h('div', {}, h('button', { type: 'submit' }, 'Show')));
    lookup.querySelector('#tx-status').name = 'status';
    lookup.addEventListener('submit', (e) => { e.preventDefault(); go('transactions', formValues(lookup)); });
    root.append(
      h('div', { class: 'cards' }, Object.entries(report.counts).map(([k, v]) => card(k, v, k === 'failed' && v ? 'state-bad' : '')),
        card('stuck', report.stuck_count, report.stuck_count ? 'state-bad' : '')),
      lookup,
      h('div', {}, params.tx ? await txDetail(params.tx) : null),
      h('h2', {}, 'Failed'),
      table('Failed transactions', [...TX_COLUMNS, 'Retry'], report.failed, (t) => [...txRow(t), retryButton(t)]),
      h('h2', {}, 'Stuck'),
      h('p', { class: 'muted' }, 'A stuck transaction keeps its nonce: the monitor replaces it with higher fees; it is never retried with a new nonce.'),
      table('Stuck transactions', TX_COLUMNS, report.stuck, txRow),
      h('h2', {}, `Status: ${status}`),
      table(`Transactions ${status}, oldest first`, TX_COLUMNS, listed.transactions, txRow));
  }

  async function memberLedger(id) {
    const [m, page] = await Promise.all([
      call('GET', `/members/${encodeURIComponent(id)}`),
      call('GET', `/members/${encodeURIComponent(id)}/rewards?limit=100`),
    ]);
    return [h('h2', {}, `Member ${m.id}`), facts([
      ['Status', m.status], ['Wallet', m.wallet && m.wallet.address && h('code', {}, m.wallet.address)],
      ['Confirmed (HNV)', m.ledger.confirmed_hnv], ['Pending (HNV)', m.ledger.pending_hnv],
      ['On chain (HNV)', m.on_chain.balance_hnv ?? (m.on_chain.error || '—')],
      ['Identities', (m.identities || []).map((i) => `${i.source}:${i.external_id}`).join(', ') || 'none'],
    ]),
    table('Ledger, newest first', ['Recorded', 'Kind', 'Source', 'Amount (HNV)', 'State', 'Reason', 'Transaction'], page.rewards,
      (r) => [when(r.created_at), r.kind, r.source, h('td', { class: 'num' }, r.amount_hnv), stateTag(r.state), r.reason || '',
        r.tx_id ? h('a', { href: `#/transactions${query({ tx: r.tx_id })}` }, r.tx_id) : '—'])];
  }

  function redemptionActions(r) {
    const id = encodeURIComponent(r.id);
    if (r.status === 'requested') {
      const reason = h('input', { type: 'text', id: `reason-${r.id}`, maxlength: 500 });
      return h('div', { class: 'actions' },
        action('Approve', 'redemptions:approve', async () => {
          const res = await call('POST', `/admin/redemptions/${id}/approve`, {});
          if (res && res.waiting_for) return `Approval recorded: waiting for the vault's guardians (request ${res.vault_request_id}).`;
          return `Redemption ${r.id.slice(0, 8)}… is ${res.status} (${res.approvals.length} of ${res.required_approvals} approvals).`;
        }, { name: 'redemption-approve', aria: `Approve redemption ${r.id}` }),
        can('redemptions:approve') ? h('label', { for: reason.id, class: 'visually-hidden' }, `Reason to reject redemption ${r.id}`) : null,
        can('redemptions:approve') ? reason : null,
        action('Reject', 'redemptions:approve', async () => {
          await call('POST', `/admin/redemptions/${id}/reject`, { reason: reason.value.trim() || 'rejected in the console' });
          return 'Redemption rejected: the escrowed tokens go back.';
        }, { name: 'redemption-reject', cls: 'danger', aria: `Reject redemption ${r.id}` }));
    }
    if (r.status === 'approved') {
      return guarded('Mark paid', 'redemptions:approve', 'The fiat payout was made: the escrowed tokens are burned.', async () => {
        await call('POST', `/admin/redemptions/${id}/mark-paid`, {});
        return 'Redemption marked paid.';
      }, { name: 'redemption-mark-paid', aria: `Mark redemption ${r.id} paid` });
    }
    return '';
  }

  async function rewardsPage(root, params) {
    const lookup = h('form', { class: 'inline', 'aria-label': 'Find a member' },
      field('member-id', 'Member id', h('input', { name: 'member', value: params.member || '', size: 38 })),
      h('div', {}, h('button', { type: 'submit' }, 'Show ledger')));
    lookup.addEventListener('submit', (e) => { e.preventDefault(); go('rewards', { ...params, ...formValues(lookup) }); });
    root.append(lookup);
    if (params.member) root.append(...await memberLedger(params.member));
    root.append(h('h2', {}, 'Redemptions'));
    if (!can('redemptions:approve')) {
      root.append(h('p', { class: 'muted' }, 'Redemptions are listed to those who approve them (redemptions:approve).'));
      return;
    }
    const status = params.redemptions || 'requested';
    const filter = h('form', { class: 'inline', 'aria-label': 'Filter redemptions' },
      field('red-status', 'Status', select([['requested', 'requested'], ['approved', 'approved'], ['paid', 'paid'], ['rejected', 'rejected']], status)),
      h('div', {}, h('button', { type: 'submit' }, 'Show')));
    filter.querySelector('#red-status').name = 'redemptions';
    filter.addEventListener('submit', (e) => { e.preventDefault(); go('rewards', { ...params, ...formValues(filter) }); });
    const list = await call('GET', `/admin/redemptions${query({ status, limit: 100 })}`);
    root.append(filter,
      h('p', { class: 'muted' }, 'Two-person rule: the requester never approves their own redemption; large ones need two distinct approvers.'),
      table(`Redemptions ${status}, newest first`, ['Requested', 'Member', 'Amount (HNV)', 'Fiat', 'Status', 'Approvals', 'Requested by', 'Decision'], list.items,
        (r) => [when(r.created_at), h('code', {}, r.member_id), h('td', { class: 'num' }, r.amount_hnv), `${r.fiat_amount} ${r.currency}`,
          stateTag(r.status), `${r.approvals.length} of ${r.required_approvals}`, r.requested_by, redemptionActions(r)]));
  }

  async function breakersPage(root) {
    const list = await call('GET', '/admin/health/circuit-breakers');
    const name = (b) => encodeURIComponent(b.name);
    root.append(h('p', { class: 'muted' }, 'The breakers of the api process that answered; each replica keeps its own.'),
      table('Circuit breakers', ['Breaker', 'State', 'Calls', 'Failures', 'Failure rate', 'Consecutive failures', 'Last change', 'Operate'], list.breakers,
        (b) => [b.name, stateTag(b.state), b.calls, b.failures,
          b.failure_rate === null || b.failure_rate === undefined ? '—' : `${Math.round(b.failure_rate * 100)} %`,
          b.consecutive_failures, b.last_transition ? [when(b.last_transition.at), ` ${b.last_transition.from} → ${b.last_transition.to}`] : '—',
          h('div', { class: 'actions' },
            b.state === 'CLOSED' ? null : action('Reset', 'system:operate', async () => {
              await call('POST', `/admin/health/circuit-breakers/${name(b)}/reset`, {});
              return `Breaker ${b.name} reset: calls pass again.`;
            }, { name: 'breaker-reset', aria: `Reset breaker ${b.name}` }),
            b.state === 'FORCED_OPEN' ? null : guarded('Force open', 'system:operate', `Every call through ${b.name} is refused until someone resets it.`, async () => {
              await call('POST', `/admin/health/circuit-breakers/${name(b)}/force-open`, {});
              return `Breaker ${b.name} forced open.`;
            }, { name: 'breaker-force-open', aria: `Force breaker ${b.name} open` }))]));
  }

  async function noncesPage(root, params) {
    const form = h('form', { class: 'inline', 'aria-label': 'Find a nonce account' },
      field('n-chain', 'Chain id', h('input', { name: 'chain', inputmode: 'numeric', value: params.chain || '31337', size: 8 })),
      field('n-address', 'Address', h('input', { name: 'address', value: params.address || '', size: 44, placeholder: '0x…' })),
      h('div', {}, h('button', { type: 'submit' }, 'Show')));
    form.addEventListener('submit', (e) => { e.preventDefault(); go('nonces', formValues(form)); });
    const accounts = await call('GET', '/admin/nonces');
    root.append(table('Nonce accounts', ['Chain', 'Account', 'Next nonce', 'Chain floor', 'Last sync', 'Leases'], accounts,
      (a) => [a.chain_id, h('a', { href: `#/nonces${query({ chain: a.chain_id, address: a.address })}` }, a.address),
        a.next, a.chain_floor ?? '—', when(a.last_sync), a.leases]), form);
    if (!params.chain || !params.address) {
      root.append(h('p', { class: 'muted' }, 'Choose an account above, or enter one, to see its nonces.'));
      return;
    }
    const path = `/admin/nonces/${encodeURIComponent(params.chain)}/${encodeURIComponent(params.address)}`;
    const n = await call('GET', path);
    const force = h('input', { type: 'checkbox', id: 'n-force' });
    root.append(facts([
      ['Account', h('code', {}, n.address)], ['Chain', n.chain_id], ['Next nonce', n.next], ['Chain floor', n.chain_floor],
      ['Last sync', when(n.last_sync)], ['Free nonces', `${n.free_count}: ${n.free.join(', ') || 'none'}`],
      ['Leases outstanding', n.leases_outstanding], ['Committed, not yet passed', n.committed.join(', ') || 'none'],
    ]), table('Leases', ['Nonce', 'Lease', 'Leased', 'Expires', 'Expired'], n.leases,
      (l) => [l.nonce, h('code', {}, l.lease_id), when(l.leased_at), when(l.expires_at), l.expired ? 'yes' : 'no']),
    can('system:operate') ? h('div', { class: 'actions' }, force, h('label', { for: 'n-force' }, 'Force: drop unexpired leases')) : null,
    guarded('Reset nonce', 'system:operate', 'The next nonce is set to the chain\'s pending nonce. Transactions holding a lease may then fail.', async () => {
      const r = await call('POST', `${path}/reset`, { force: force.checked });
      return `Next nonce ${r.previous_next} → ${r.next}; ${r.dropped_leases} lease(s) dropped.`;
    }, { name: 'nonce-reset' }));
  }

  async function auditPage(root, params) {
    const [chain, page] = await Promise.all([
      call('GET', '/admin/audit/verify'),
      call('GET', `/admin/audit/records${query({ ...params, limit: 100 })}`),
    ]);
    const filters = h('form', { class: 'filters', 'aria-label': 'Filter the audit log' },
      field('a-action', 'Action', h('input', { name: 'action', value: params.action || '', placeholder: 'auth.login' })),
      field('a-prefix', 'Action starts with', h('input', { name: 'prefix', value: params.prefix || '', placeholder: 'fraud.' })),
      field('a-target', 'Target', h('input', { name: 'target', value: params.target || '' })),
      field('a-severity', 'At least', select([['', 'any'], ['INFO', 'INFO'], ['LOW', 'LOW'], ['MEDIUM', 'MEDIUM'], ['HIGH', 'HIGH'], ['CRITICAL', 'CRITICAL']], params.severity || '')),
      h('div', {}, h('button', { type: 'submit' }, 'Apply filters')));
    filters.querySelector('#a-severity').name = 'severity';
    filters.addEventListener('submit', (e) => { e.preventDefault(); go('audit', formValues(filters)); });
    root.append(
      h('div', { class: 'cards' },
        card('Hash chain', chain.valid ? 'verified' : 'BROKEN', chain.valid ? 'state-good' : 'state-bad'),
        card('Records', chain.records ?? '—'), card('Head sequence', chain.head_seq)),
      facts([['Head hash', h('code', {}, chain.head_hash)], ...(chain.valid ? [] : [['First broken record', chain.first_broken_seq], ['Why', chain.reason]])]),
      filters,
      table('Audit records, newest first', ['Seq', 'When', 'Actor', 'Action', 'Target', 'Severity', 'Details'], page.records,
        (r) => [r.seq, when(r.created_at), r.actor, r.action, r.target || '—', stateTag(r.severity), h('code', {}, JSON.stringify(r.details))]),
      page.next ? h('p', {}, h('a', { href: `#/audit${query({ ...params, before: page.next })}` }, 'Older records')) : null);
  }

  async function webhooksPage(root) {
    const [endpoints, dead, deliveries] = await Promise.all([
      call('GET', '/admin/webhooks/endpoints?limit=100'),
      call('GET', '/admin/webhooks/dead-letters?limit=100'),
      call('GET', '/admin/webhooks/deliveries?limit=50'),
    ]);
    root.append(
      table('Endpoints', ['URL', 'Description', 'Enabled', 'Failing since', 'Deliveries pending', 'Dead letters', 'Signing secrets', 'Operate'], endpoints.endpoints,
        (e) => [h('code', {}, e.url), e.description, e.enabled ? 'yes' : stateTag('disabled'), when(e.failing_since),
          h('td', { class: 'num' }, e.pending_deliveries), h('td', { class: 'num' }, e.dead_letters), e.secrets.length,
          e.enabled
            ? guarded('Disable', 'webhook_endpoints:manage', 'Deliveries stop; pending messages wait until it is enabled again.', async () => {
              await call('PATCH', `/admin/webhooks/endpoints/${e.id}`, { enabled: false });
              return `Endpoint ${e.url} disabled.`;
            }, { name: 'endpoint-disable', aria: `Disable endpoint ${e.url}` })
            : action('Enable', 'webhook_endpoints:manage', async () => {
              await call('PATCH', `/admin/webhooks/endpoints/${e.id}`, { enabled: true });
              return `Endpoint ${e.url} enabled.`;
            }, { name: 'endpoint-enable', aria: `Enable endpoint ${e.url}` })]),
      h('h2', {}, 'Deliveries'),
      table('The latest delivery attempts, newest first', ['Message', 'Endpoint', 'Event', 'Attempt', 'Status', 'Answer', 'Due', 'Made'], deliveries.deliveries,
        (d) => [h('code', {}, d.message_id), h('code', {}, d.endpoint_id), d.event_type, d.attempt, stateTag(d.status),
          d.response_status ? `HTTP ${d.response_status}` : (d.error || '—'), d.status === 'pending' ? when(d.next_attempt_at) : '—', when(d.attempted_at)]),
      h('h2', {}, 'Dead letters'),
      table('Dead-lettered messages, oldest first', ['Message', 'Endpoint', 'Event', 'Attempts', 'Last answer', 'Dead since', 'Replay'], dead.dead_letters,
        (d) => [h('code', {}, d.message_id), h('code', {}, d.endpoint_id), d.event_type, d.attempts,
          d.last_status ? `HTTP ${d.last_status}` : (d.last_error || '—'), when(d.dead_since),
          action('Replay', 'webhook_endpoints:manage', async () => {
            await call('POST', `/admin/webhooks/dead-letters/${encodeURIComponent(d.message_id)}/replay`, {});
            return `Message ${d.message_id} queued for one more attempt.`;
          }, { name: 'dead-letter-replay', aria: `Replay message ${d.message_id}` })]));
  }

  async function sessionsPage(root) {
    const list = await call('GET', '/auth/sessions');
    const current = tokens() && tokens().session;
    const own = (label, run, aria) => {
      const b = h('button', { type: 'button', class: 'quiet', 'aria-label': aria || null }, label);
      b.addEventListener('click', async () => {
        try { await run(); } catch (err) { flash(`${label} failed: ${describe(err)}`, false); }
      });
      return b;
    };
    root.append(
      table('Your sessions', ['Device', 'Address', 'Browser', 'Signed in', 'Last active', ''], list,
        (s) => [s.device, s.ip || '—', s.user_agent, when(s.created_at), when(s.last_active_at),
          s.id === current ? 'this session' : own('Revoke', async () => {
            await call('DELETE', `/auth/sessions/${s.id}`);
            flash('Session revoked.', true);
            await route();
          }, `Revoke session on ${s.device}`)]),
      h('p', {}, own('Log out everywhere', async () => {
        await call('POST', '/auth/logout-all', {});
        signedOut('Every session has ended.');
      })));
  }

  // ---- navigation, sign-in, sign-out -------------------------------------------------------

  const PAGES = [
    { id: 'status', title: 'Status', read: 'system:operate', render: statusPage },
    { id: 'alerts', title: 'Alerts', read: 'alerts:read', render: alertsPage },
    { id: 'transactions', title: 'Transactions', read: 'transactions:read', render: transactionsPage },
    { id: 'rewards', title: 'Rewards', read: 'members:read', render: rewardsPage },
    { id: 'breakers', title: 'Circuit breakers', read: 'system:operate', render: breakersPage },
    { id: 'nonces', title: 'Nonces', read: 'system:operate', render: noncesPage },
    { id: 'audit', title: 'Audit log', read: 'audit:read', render: auditPage },
    { id: 'webhooks', title: 'Webhooks', read: 'webhook_endpoints:manage', render: webhooksPage },
    { id: 'sessions', title: 'Sessions', read: null, render: sessionsPage },
  ];

  const readable = (p) => p.read === null || can(p.read);

  function current() {
    const [path, q] = location.hash.replace(/^#\/?/, '').split('?');
    const params = Object.fromEntries(new URLSearchParams(q || ''));
    const page = PAGES.find((p) => p.id === path) || PAGES.find(readable);
    return { page, params };
  }

  function drawNav(active) {
    const nav = $('nav');
    nav.replaceChildren(h('ul', {}, PAGES.filter(readable).map((p) =>
      h('li', {}, h('a', { href: `#/${p.id}`, 'aria-current': p.id === active ? 'page' : null }, p.title)))));
    nav.hidden = false;
  }

  async function route() {
    clearTimeout(timer);
    if (!me) return;
    const mine = ++generation;
    const { page, params } = current();
    drawNav(page.id);
    document.title = `${page.title} · haven console`;
    const root = h('section', { 'aria-labelledby': 'page-title' }, h('h1', { id: 'page-title' }, page.title));
    if (!readable(page)) {
      root.append(h('p', {}, `Your role (${me.role || 'key'}) cannot see this page: it needs ${page.read}.`));
    } else {
      try {
        await page.render(root, params);
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) return;
        root.append(h('p', { class: 'error', role: 'alert' }, `This page could not be loaded: ${describe(err)}`));
      }
    }
    if (mine !== generation) return; // a later navigation drew its own page
    root.dataset.loaded = page.id;
    $('page').replaceChildren(root);
  }

  function signedOut(message) {
    me = null;
    clearTimeout(timer);
    forget();
    $('nav').hidden = true;
    $('who').hidden = true;
    $('page').replaceChildren();
    $('login').hidden = false;
    if (message) flash(message, true);
    $('login-email').focus();
  }

  async function start() {
    try {
      me = await call('GET', '/auth/whoami');
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) flash(`The api could not be reached: ${describe(err)}`, false);
      return;
    }
    $('login').hidden = true;
    $('who-name').textContent = `${me.kind === 'user' ? 'user' : 'key'} ${String(me.id || me.key_id).slice(0, 8)} · ${me.role || 'service'}`;
    $('who').hidden = false;
    await route();
  }

  async function login(event) {
    event.preventDefault();
    const form = event.target;
    $('login-error').textContent = '';
    const res = await fetch(`${API}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: form.email.value.trim(), password: form.password.value, device: 'console' }),
    }).catch(() => null);
    if (!res || !res.ok) {
      const body = res ? await res.json().catch(() => null) : null;
      $('login-error').textContent = body ? `${body.user_message || body.message}` : 'The api could not be reached.';
      return;
    }
    keep(await res.json());
    form.password.value = '';
    flash('', true);
    await start();
  }

  async function logout() {
    const t = tokens();
    if (t) {
      await fetch(`${API}/auth/logout`, {
        method: 'POST',
        headers: { authorization: `Bearer ${t.access}`, 'content-type': 'application/json' },
        body: JSON.stringify({ refresh_token: t.refresh }),
      }).catch(() => null);
    }
    signedOut('You are signed out.');
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('login-form').addEventListener('submit', login);
    $('logout').addEventListener('click', logout);
    // the skip link moves the focus without touching the page's address (#/page)
    document.querySelector('.skip').addEventListener('click', (e) => {
      e.preventDefault();
      $('main').focus();
    });
    window.addEventListener('hashchange', () => {
      if (!location.hash.startsWith('#/')) return;
      flash('', true);
      route().then(() => { const t = $('page-title'); if (t) t.setAttribute('tabindex', '-1'); });
    });
    if (tokens()) start(); else signedOut();
  });
})();
