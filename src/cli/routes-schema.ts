/**
 * `npm run routes:schema`: writes the JSON Schema of the routes file format (generated from the
 * TypeBox schema, src/proxy/routes-file-schema.ts) to stdout; config/routes.schema.json is its
 * output, and a test keeps the two equal.
 */
import { routesJsonSchema } from '../proxy/routes-file-schema.js'

process.stdout.write(JSON.stringify(routesJsonSchema(), null, 2) + '\n')
