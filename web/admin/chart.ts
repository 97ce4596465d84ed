/**
 * The dashboard's events-per-time chart: inline SVG drawn here (no chart library, no CDN, nothing
 * inline that the CSP would refuse: colours come from admin.css classes). One line per series,
 * a y axis from 0 to a rounded maximum, time labels under the x axis.
 */
const SVG = 'http://www.w3.org/2000/svg'

export interface Series { key: string, label: string, values: number[] }

function el (tag: string, attrs: Record<string, string | number> = {}, text?: string): SVGElement {
  const node = document.createElementNS(SVG, tag)
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v))
  if (text !== undefined) node.textContent = text
  return node
}

/** 1, 2, 5, 10, 20, 50 ...: the smallest of these at or above the value. */
export function niceMax (value: number): number {
  if (value <= 1) return 1
  const magnitude = 10 ** Math.floor(Math.log10(value))
  for (const step of [1, 2, 5, 10]) if (step * magnitude >= value) return step * magnitude
  return 10 * magnitude
}

export function drawChart (times: string[], series: Series[], label: (iso: string) => string, yTitle: string): SVGElement {
  const width = 640
  const height = 220
  const pad = { left: 40, right: 12, top: 12, bottom: 28 }
  const plotW = width - pad.left - pad.right
  const plotH = height - pad.top - pad.bottom
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values)))
  const x = (i: number): number => pad.left + (times.length <= 1 ? 0 : (i / (times.length - 1)) * plotW)
  const y = (v: number): number => pad.top + plotH - (v / max) * plotH

  const svg = el('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img',
    'aria-label': `${yTitle}, ${series.map((s) => `${s.label} ${s.values.reduce((a, b) => a + b, 0)}`).join(', ')}` })
  for (const v of [0, max / 2, max]) {
    svg.append(el('line', { x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v), class: 'grid-line' }))
    svg.append(el('text', { x: pad.left - 6, y: y(v) + 4, class: 'axis y' }, Number.isInteger(v) ? String(v) : v.toFixed(1)))
  }
  const ticks = 6
  for (let t = 0; t < ticks; t++) {
    const i = Math.round((t / (ticks - 1)) * (times.length - 1))
    const time = times[i]
    if (time === undefined) continue
    svg.append(el('text', { x: x(i), y: height - 8, class: `axis x${t === 0 ? ' first' : t === ticks - 1 ? ' last' : ''}` }, label(time)))
  }
  for (const s of series) {
    const points = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ')
    svg.append(el('polyline', { points, class: `series ${s.key}` }, undefined))
    const title = el('title', {}, s.label)
    svg.lastElementChild?.append(title)
  }
  return svg
}
