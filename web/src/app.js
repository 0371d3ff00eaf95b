// medseg serve front end: niivue viewer, case browser, annotation, jobs, training, evaluation.
import { Niivue, NVImage, SLICE_TYPE, DRAG_MODE } from '@niivue/niivue'

const $ = (s) => document.querySelector(s)
const $$ = (s) => [...document.querySelectorAll(s)]

const state = {
  cases: [], info: null, caseId: null, caseInfo: null, labelEtag: '"none"',
  sortKey: 'id', sortRev: false, tool: 'view', label: 1, radius: 2,
  undo: [], redo: [], shadow: null, labelBitmap: null, scribbleBitmap: null,
  seeds: [], pred: null, job: null, ready: false, loads: 0, saves: 0, predictions: 0,
}
window.medseg = state  // for tests and the console

const nv = new Niivue({
  backColor: [0.09, 0.1, 0.12, 1], show3Dcrosshair: true, isColorbar: false,
  dragMode: DRAG_MODE.contrast, maxDrawUndoBitmaps: 2, isNearestInterpolation: true,
  crosshairColor: [1, 0.8, 0.1, 0.8], crosshairWidth: 0.5,
})
state.nv = nv

function status (msg, isError = false) {
  const el = $('#status'); el.textContent = msg; el.classList.toggle('error', isError)
}

async function api (path, opts = {}) {
  const r = await fetch(path, { credentials: 'same-origin', ...opts })
  if (!r.ok) {
    let msg = r.statusText
    try { msg = (await r.json()).error || msg } catch (e) { /* not JSON */ }
    const err = new Error(msg); err.status = r.status; throw err
  }
  return r
}
const getJSON = async (p) => (await api(p)).json()

// ------------------------------------------------------------------ case browser
const fmt = (a, d = 2) => a.map((v) => (Number.isInteger(v) ? v : v.toFixed(d))).join('×')

function renderCases () {
  const q = $('#filter').value.toLowerCase()
  const key = state.sortKey
  const val = (c) => key === 'dice' ? (c.metrics ? c.metrics.dice : -1)
    : key === 'shape' ? c.shape.reduce((a, b) => a * b, 1)
      : key === 'spacing' ? c.spacing[c.spacing.length - 1] : (c[key] ?? '')
  const rows = state.cases.filter((c) => c.id.toLowerCase().includes(q) ||
    (q === 'labelled' && c.labelled) || (q === 'unlabelled' && !c.labelled))
  rows.sort((a, b) => { const x = val(a); const y = val(b); return (x < y ? -1 : x > y ? 1 : 0) * (state.sortRev ? -1 : 1) })
  $('#cases tbody').innerHTML = rows.map((c) => `<tr class="case${c.id === state.caseId ? ' open' : ''}" data-id="${encodeURIComponent(c.id)}">
    <td>${esc(c.id)}</td><td>${fmt(c.shape)}${c.channels > 1 ? ` ×${c.channels}ch` : ''}</td><td>${fmt(c.spacing)}</td>
    <td class="${c.labelled ? 'yes' : 'no'}">${c.labelled ? 'yes' : 'no'}</td>
    <td title="${esc(c.modified || '')}">${c.modified ? esc(c.modified.slice(5, 16).replace('T', ' ')) : ''}</td>
    <td>${c.metrics && c.metrics.dice != null ? c.metrics.dice.toFixed(3) : ''}</td></tr>`).join('')
  $$('#cases th').forEach((th) => {
    th.classList.toggle('sorted', th.dataset.key === key); th.classList.toggle('rev', th.dataset.key === key && state.sortRev)
  })
}
function esc (s) { return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`) }

async function refreshCases () {
  state.cases = await getJSON('/api/cases')
  renderCases()
}

// ------------------------------------------------------------------ loading a case
async function volumeFrom (url, name, colormap, opacity) {
  const r = await api(url)
  const buffer = await r.arrayBuffer()
  const vol = await NVImage.loadFromUrl({ url: name, name, buffer, colormap, opacity })
  return { vol, etag: r.headers.get('ETag') }
}

async function openCase (id) {
  const t0 = performance.now()
  status(`loading ${id}…`)
  state.ready = false
  const info = state.cases.find((c) => c.id === id) || await getJSON(`/api/cases/${encodeURIComponent(id)}`)
  state.caseId = id; state.caseInfo = info
  const enc = encodeURIComponent(id)
  const { vol } = await volumeFrom(`/api/cases/${enc}/image`, `${id}.nii.gz`, 'gray', 1)
  while (nv.volumes.length) nv.removeVolume(nv.volumes[nv.volumes.length - 1])
  nv.closeDrawing()
  nv.addVolume(vol)
  state.pred = null; state.seeds = []; updateSeeds()
  // the label is the drawing layer (editable); missing label: an empty drawing
  state.labelEtag = '"none"'
  nv.createEmptyDrawing()
  if (info.labelled) {
    const lab = await volumeFrom(`/api/cases/${enc}/label`, `${id}_label.nii.gz`, 'gray', 1)
    nv.loadDrawing(lab.vol)
    state.labelEtag = lab.etag
  }
  nv.setDrawColormap('$slicer3d')
  nv.setDrawOpacity($('#label-opacity').value / 100)
  state.labelBitmap = null; state.scribbleBitmap = null
  resetHistory()
  const is3d = info.ndim === 3
  $$('#views button').forEach((b) => { b.disabled = !is3d && b.dataset.view !== 'axial' })
  setView(is3d ? 'multi' : 'axial')
  const w = vol.cal_max - vol.cal_min
  state.range = [vol.global_min ?? vol.cal_min, vol.global_max ?? vol.cal_max]
  $('#win-min').value = 1000 * (vol.cal_min - state.range[0]) / Math.max(1e-9, state.range[1] - state.range[0])
  $('#win-max').value = 1000 * (vol.cal_max - state.range[0]) / Math.max(1e-9, state.range[1] - state.range[0])
  void w
  $('#case-title').textContent = `case ${id}`
  $('#geometry').textContent = `shape ${fmt(info.shape)}${info.channels > 1 ? ` (${info.channels} channels${vol.hdr.datatypeCode === 128 ? ', RGB' : ''})` : ''} · spacing ${fmt(info.spacing, 3)} mm`
  $('#accept').disabled = true
  await showMetrics()
  renderCases()
  nv.drawScene()
  state.loadMs = performance.now() - t0
  state.loads++
  state.ready = true
  status(`${id} loaded (${Math.round(state.loadMs)} ms)`)
}

function setView (v) {
  const t = { axial: SLICE_TYPE.AXIAL, coronal: SLICE_TYPE.CORONAL, sagittal: SLICE_TYPE.SAGITTAL,
    multi: SLICE_TYPE.MULTIPLANAR, render: SLICE_TYPE.RENDER }[v]
  nv.setSliceType(t)
  $$('#views button').forEach((b) => b.classList.toggle('on', b.dataset.view === v))
  state.view = v
}

// ------------------------------------------------------------------ drawing history (undo/redo, ≥50 steps)
const MAX_HISTORY = 100
function resetHistory () {
  state.undo = []; state.redo = []
  state.shadow = nv.drawBitmap ? nv.drawBitmap.slice() : null
}
function commitStroke () {
  const cur = nv.drawBitmap; const old = state.shadow
  if (!cur || !old || cur.length !== old.length) { resetHistory(); return }
  const idx = []
  for (let i = 0; i < cur.length; i++) if (cur[i] !== old[i]) idx.push(i)
  if (!idx.length) return
  const ix = Uint32Array.from(idx)
  const before = new Uint8Array(ix.length); const after = new Uint8Array(ix.length)
  for (let k = 0; k < ix.length; k++) { before[k] = old[ix[k]]; after[k] = cur[ix[k]]; old[ix[k]] = cur[ix[k]] }
  state.undo.push({ ix, before, after }); if (state.undo.length > MAX_HISTORY) state.undo.shift()
  state.redo = []
  state.strokes = (state.strokes || 0) + 1
}
function applyStep (step, values) {
  const bm = nv.drawBitmap
  for (let k = 0; k < step.ix.length; k++) { bm[step.ix[k]] = values[k]; state.shadow[step.ix[k]] = values[k] }
  nv.refreshDrawing(true)
}
function undo () { const s = state.undo.pop(); if (s) { applyStep(s, s.before); state.redo.push(s) } }
function redo () { const s = state.redo.pop(); if (s) { applyStep(s, s.after); state.undo.push(s) } }
nv.onDrawingChanged = (action) => { if (action === 'draw') commitStroke() }

// ------------------------------------------------------------------ tools
function setTool (tool) {
  if (tool === state.tool) return
  // scribbles live in their own bitmap: swap it in and out of niivue's drawing layer
  if (tool === 'scribble' && state.tool !== 'scribble') {
    state.labelBitmap = nv.drawBitmap.slice()
    nv.drawBitmap.set(state.scribbleBitmap || new Uint8Array(nv.drawBitmap.length))
    nv.refreshDrawing(true); resetHistory()
  } else if (state.tool === 'scribble' && tool !== 'scribble') {
    state.scribbleBitmap = nv.drawBitmap.slice()
    nv.drawBitmap.set(state.labelBitmap); state.labelBitmap = null
    nv.refreshDrawing(true); resetHistory()
  }
  state.tool = tool
  $$('#tool-buttons button').forEach((b) => b.classList.toggle('on', b.dataset.tool === tool))
  const drawing = tool === 'brush' || tool === 'eraser' || tool === 'scribble'
  nv.setDrawingEnabled(drawing)
  nv.opts.dragMode = drawing || tool === 'seed' ? DRAG_MODE.none : DRAG_MODE.contrast
  updatePen()
}
function updatePen () {
  nv.opts.penSize = 2 * state.radius + 1
  const v = state.tool === 'eraser' ? 0 : state.tool === 'scribble' ? state.label + 1 : state.label
  nv.setPenValue(v, false)
}
function labelBitmapNow () { return state.tool === 'scribble' ? state.labelBitmap : nv.drawBitmap }

// seeds: clicks in seed mode, converted from niivue's (x, y, z) voxel to medseg's (z, y, x) / (y, x)
nv.onLocationChange = (loc) => {
  if (!loc || !loc.vox) return
  const v = loc.vox.map((x) => Math.round(x))
  const val = loc.values && loc.values[0] ? loc.values[0].value : ''
  $('#slice-info').textContent = `voxel (x, y, z) ${v.join(', ')} · value ${typeof val === 'number' ? +val.toFixed(3) : val}`
}
nv.onMouseUp = () => {
  if (state.tool !== 'seed' || !state.caseInfo) return
  const v = nv.scene.crosshairPos ? nv.frac2vox(nv.scene.crosshairPos) : null
  if (!v) return
  const [x, y, z] = v.map((t) => Math.round(t))
  state.seeds.push(state.caseInfo.ndim === 3 ? [z, y, x] : [y, x]); updateSeeds()
}
function updateSeeds () { $('#seed-count').textContent = `${state.seeds.length} seed${state.seeds.length === 1 ? '' : 's'}` }

// ------------------------------------------------------------------ saving
async function drawingBytes () {
  // niivue writes the drawing layer as NIfTI on the background image's grid
  const bytes = await nv.saveImage({ filename: '', isSaveDrawing: true, volumeByIndex: 0 })
  return bytes
}
async function save () {
  if (!state.caseId) return
  const wasScribble = state.tool === 'scribble'
  if (wasScribble) setTool('brush')
  try {
    const body = await drawingBytes()
    const r = await api(`/api/cases/${encodeURIComponent(state.caseId)}/label`, {
      method: 'PUT', body, headers: { 'If-Match': state.labelEtag, 'Content-Type': 'application/octet-stream' },
    })
    state.labelEtag = (await r.json()).etag
    state.saves++
    status(`saved the label of ${state.caseId}`)
    await refreshCases(); await showMetrics()
  } catch (e) {
    status(e.status === 409 ? `not saved: ${e.message}` : `save failed: ${e.message}`, true)
  } finally { if (wasScribble) setTool('scribble') }
}

// ------------------------------------------------------------------ predictions
async function showPrediction () {
  if (state.pred) nv.removeVolume(state.pred)
  const { vol } = await volumeFrom(`/api/cases/${encodeURIComponent(state.caseId)}/prediction`, 'prediction.nii.gz',
    'warm', $('#pred-opacity').value / 100)
  vol.cal_min = 0.5; vol.cal_max = Math.max(1.5, vol.global_max || 1)
  nv.addVolume(vol)
  vol.opacity = $('#show-pred').checked ? $('#pred-opacity').value / 100 : 0
  nv.updateGLVolume()
  state.pred = vol
  state.predictions++
  $('#accept').disabled = false
  await showMetrics()
}
async function acceptPrediction () {
  if (!state.pred) return
  if (state.tool === 'scribble') setTool('brush')
  const before = nv.drawBitmap.slice()
  nv.loadDrawing(state.pred)
  state.shadow = before; commitStroke()
  nv.setDrawColormap('$slicer3d')
  status('prediction copied into the label: save to keep it')
}
async function showMetrics () {
  const el = $('#metrics')
  if (!state.caseId) return
  try {
    const m = await getJSON(`/api/cases/${encodeURIComponent(state.caseId)}/metrics`)
    el.textContent = `dice ${m.dice == null ? '–' : m.dice.toFixed(3)} · hd95 ${m.hd95 == null ? '–' : m.hd95.toFixed(2)} (${m.source} vs saved label)`
  } catch (e) { el.textContent = e.status === 404 ? e.message : `metrics failed: ${e.message}` }
}
async function scribblePredict () {
  if (!state.caseId) return
  if (state.tool !== 'scribble') { status('draw scribbles first (S)', true); return }
  const t0 = performance.now()
  status('predicting from scribbles…')
  try {
    const body = await drawingBytes()
    await api(`/api/cases/${encodeURIComponent(state.caseId)}/scribbles`, { method: 'POST', body })
    await showPrediction()
    state.scribbleMs = performance.now() - t0
    status(`prediction from scribbles (${Math.round(state.scribbleMs)} ms)`)
  } catch (e) { status(`scribbles: ${e.message}`, true) }
}

// ------------------------------------------------------------------ jobs
async function runJob (spec) {
  const r = await api('/api/jobs', { method: 'POST', body: JSON.stringify(spec), headers: { 'Content-Type': 'application/json' } })
  const job = await r.json()
  state.job = job.id
  $('#cancel').disabled = false
  for (;;) {
    const s = await getJSON(`/api/jobs/${job.id}`)
    $('#progress').value = s.progress; $('#job-msg').textContent = `${s.kind}: ${s.message}`
    if (['done', 'failed', 'cancelled'].includes(s.state)) { state.job = null; $('#cancel').disabled = true; return s }
    await new Promise((res) => setTimeout(res, 250))
  }
}
async function runSelected (spec) {
  try {
    const s = await runJob(spec)
    if (s.state === 'done' && s.result.case === state.caseId) { await showPrediction(); status(s.message) } else if (s.state !== 'done') status(`${s.state}: ${s.message}`, s.state === 'failed')
    await refreshCases()
  } catch (e) { status(e.message, true) }
}
async function loadMethods () {
  const [methods, models] = await Promise.all([getJSON('/api/methods'), getJSON('/api/models')])
  const sel = $('#method-pick')
  const opts = methods.map((m) => `<option value="method:${esc(m.name)}" title="${esc(m.summary || '')}">${esc(m.name)} (${esc(m.family)})</option>`)
  const mopts = models.map((m) => `<option value="model:${esc(m.id)}">model ${esc(m.name)} v${m.version} (${esc(m.source)})</option>`)
  const keep = sel.value
  sel.innerHTML = `<optgroup label="methods">${opts.join('')}</optgroup>` + (mopts.length ? `<optgroup label="models">${mopts.join('')}</optgroup>` : '')
  if (keep) sel.value = keep; else sel.value = 'method:otsu'
  $('#models').innerHTML = models.length ? models.map((m) => `<li>${esc(m.name)} v${m.version} · ${esc(m.source)}${m.created ? ' · ' + esc(m.created.replace('T', ' ')) : ''}</li>`).join('') : '<li>no models yet</li>'
}

// ------------------------------------------------------------------ wiring
function wire () {
  $('#filter').addEventListener('input', renderCases)
  $$('#cases th').forEach((th) => th.addEventListener('click', () => {
    state.sortRev = state.sortKey === th.dataset.key ? !state.sortRev : false; state.sortKey = th.dataset.key; renderCases()
  }))
  $('#cases tbody').addEventListener('click', (ev) => {
    const tr = ev.target.closest('tr.case'); if (tr) openCase(decodeURIComponent(tr.dataset.id)).catch((e) => status(e.message, true))
  })
  $$('#views button').forEach((b) => b.addEventListener('click', () => setView(b.dataset.view)))
  $$('#tool-buttons button').forEach((b) => b.addEventListener('click', () => setTool(b.dataset.tool)))
  const win = () => {
    const v = nv.volumes[0]; if (!v || !state.range) return
    const [lo, hi] = state.range; const a = +$('#win-min').value / 1000; const b = +$('#win-max').value / 1000
    v.cal_min = lo + Math.min(a, b) * (hi - lo); v.cal_max = lo + Math.max(a, b, Math.min(a, b) + 0.001) * (hi - lo)
    nv.updateGLVolume()
  }
  $('#win-min').addEventListener('input', win); $('#win-max').addEventListener('input', win)
  const labOp = () => nv.setDrawOpacity($('#show-label').checked ? $('#label-opacity').value / 100 : 0)
  $('#label-opacity').addEventListener('input', labOp); $('#show-label').addEventListener('change', labOp)
  const predOp = () => { if (state.pred) { state.pred.opacity = $('#show-pred').checked ? $('#pred-opacity').value / 100 : 0; nv.updateGLVolume() } }
  $('#pred-opacity').addEventListener('input', predOp); $('#show-pred').addEventListener('change', predOp)
  $('#radius').addEventListener('input', () => { state.radius = +$('#radius').value; $('#radius-val').textContent = state.radius; updatePen() })
  $('#label-pick').addEventListener('change', () => { state.label = +$('#label-pick').value; updatePen() })
  $('#undo').addEventListener('click', undo); $('#redo').addEventListener('click', redo)
  $('#save').addEventListener('click', save)
  $('#scribble-run').addEventListener('click', scribblePredict)
  $('#scribble-clear').addEventListener('click', () => {
    if (state.tool === 'scribble') { nv.drawBitmap.fill(0); nv.refreshDrawing(true); resetHistory() } else state.scribbleBitmap = null
  })
  $('#seed-clear').addEventListener('click', () => { state.seeds = []; updateSeeds() })
  $('#seed-run').addEventListener('click', () => {
    if (!state.seeds.length) { status('click seeds first (G)', true); return }
    runSelected({ kind: 'segment', case: state.caseId, method: 'region-growing', params: { seeds: state.seeds.map((s) => s.join(',')).join(';') } })
  })
  $('#run').addEventListener('click', () => {
    if (!state.caseId) return
    let params = {}
    try { params = $('#params').value.trim() ? JSON.parse($('#params').value) : {} } catch (e) { status('parameters must be JSON', true); return }
    const [kind, name] = $('#method-pick').value.split(/:(.*)/s)
    runSelected({ kind: 'segment', case: state.caseId, [kind]: name, params })
  })
  $('#cancel').addEventListener('click', () => { if (state.job) api(`/api/jobs/${state.job}`, { method: 'DELETE' }) })
  $('#accept').addEventListener('click', acceptPrediction)
  $('#train').addEventListener('click', async () => {
    try {
      const s = await runJob({ kind: 'train', case: state.caseId, method: 'random-forest', params: {} })
      status(s.message, s.state === 'failed'); await loadMethods()
    } catch (e) { status(e.message, true) }
  })
  window.addEventListener('keydown', (ev) => {
    if (ev.target.matches('input, textarea, select')) return
    const k = ev.key.toLowerCase()
    if ((ev.ctrlKey || ev.metaKey) && k === 'z') { ev.preventDefault(); ev.shiftKey ? redo() : undo() } else if ((ev.ctrlKey || ev.metaKey) && k === 'y') { ev.preventDefault(); redo() } else if ((ev.ctrlKey || ev.metaKey) && k === 's') { ev.preventDefault(); save() } else if (ev.ctrlKey || ev.metaKey || ev.altKey) {
      // leave other shortcuts to the browser
    } else if ({ v: 'view', b: 'brush', e: 'eraser', s: 'scribble', g: 'seed' }[k]) setTool({ v: 'view', b: 'brush', e: 'eraser', s: 'scribble', g: 'seed' }[k])
    else if (/^[1-9]$/.test(k) && $(`#label-pick option[value="${k}"]`)) { $('#label-pick').value = k; state.label = +k; updatePen() } else if (k === '[' || k === ']') {
      state.radius = Math.max(0, Math.min(20, state.radius + (k === ']' ? 1 : -1))); $('#radius').value = state.radius; $('#radius-val').textContent = state.radius; updatePen()
    }
  })
}

async function main () {
  wire()
  await nv.attachTo('gl')
  nv.setRadiologicalConvention(true)  // array column 0 on the left: photos unmirrored, CT/MR as radiologists read them
  try {
    state.info = await getJSON('/api/info')
    const names = {}
    for (const r of state.info.roots) Object.assign(names, r.label_names)
    $('#label-pick').innerHTML = Object.entries(names)
      .map(([v, n]) => `<option value="${v}">${v}: ${esc(n)}</option>`).join('')
    await refreshCases()
    await loadMethods()
    $('#label-pick').value = '1'
    status(`${state.cases.length} cases`)
    if (state.cases.length) await openCase(state.cases[0].id)
  } catch (e) { status(e.message, true) }
}
main()
