/**
 * Identity values reach upstreams percent-encoded (UTF-8, as encodeURIComponent does), so a
 * username such as `李雷` or a role with an emoji is never a raw non-Latin-1 header value (which
 * Node refuses: every proxied call would be a 502) nor Latin-1 bytes (`José`). Plain ASCII names
 * (letters, digits, `-_.!~*'()`) are unchanged. Upstreams decode with decodeURIComponent; in
 * X-User-Roles each role is encoded on its own, so a `,` inside a role arrives as `%2C` and the
 * list still splits on `,`.
 */
export function encodeIdentityValue (value: string): string {
  return encodeURIComponent(value)
}

export function encodeIdentityList (values: readonly string[]): string {
  return values.map(encodeURIComponent).join(',')
}
