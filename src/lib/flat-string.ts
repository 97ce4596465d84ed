/**
 * A flat copy of a string that is kept for long (a cache key). A key built by concatenation
 * (`gw:{u:${userId}}:s:${sessionId}`) is a V8 rope: a tree of its pieces, about 80 bytes more than
 * its characters and keeping the pieces alive; the JSON round trip returns one flat string, the
 * same characters (lone surrogates included: JSON.stringify escapes them, JSON.parse restores them).
 * Measured in docs/operations.md ("Memory"): the session cache's entries.
 */
export const flatString = (s: string): string => JSON.parse(JSON.stringify(s)) as string
