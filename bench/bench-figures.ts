/** Figures shared by the benchmarks' reports: medians and number formatting. */

/** The median; for an even count, the mean of the two middle values. */
export function median (values: number[]): number {
  const s = [...values].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/** The median as one of the values; for an even count, the lower of the two middle ones (a measured round, not a mean). */
export function lowerMedian (values: number[]): number {
  const s = [...values].sort((a, b) => a - b)
  return s[Math.floor((s.length - 1) / 2)]!
}

/** `n` with thousands separators and exactly `digits` decimals. */
export const fmt = (n: number, digits = 0): string =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
