/** Types of scripts/build-client.mjs (imported by the tests). */
export declare const CLIENT_URL: string
/** Builds the client and the demo into `outDir` (default dist/); resolves with the client's `sha384-...` integrity value. */
export declare function buildClient (options?: { outDir?: string }): Promise<string>
