/**
 * The gateway's entry point: reads the environment, listens, and shuts down gracefully.
 * An invalid configuration stops start-up with exit status 1 and one line naming the variable.
 */
import closeWithGrace from 'close-with-grace'
import { buildGateway } from './app.js'
import { ConfigError, loadConfig } from './config.js'
import { KeyFileError } from './tokens/key-ring.js'
import { RoutesFileError } from './proxy/routes-file.js'

async function main (): Promise<void> {
  let config
  try {
    config = loadConfig(process.env)
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`invalid configuration: ${err.message}\n`)
      process.exit(1)
    }
    throw err
  }

  let gateway
  try {
    gateway = await buildGateway({ config })
  } catch (err) {
    if (err instanceof KeyFileError) {
      process.stderr.write(`invalid configuration: JWT_KEYS_FILE ${err.message}\n`)
      process.exit(1)
    }
    if (err instanceof RoutesFileError) {
      for (const line of err.problems) process.stderr.write(`invalid routes file: ${line}\n`)
      process.exit(1)
    }
    throw err
  }

  // SIGHUP reads ROUTES_FILE again (src/proxy/routes-reload.ts); an invalid file keeps the table.
  process.on('SIGHUP', () => { gateway.routesControl.reload('signal').catch((err: unknown) =>
    gateway.log.error({ err }, 'routes reload failed')) })

  // SIGHUP reloads the routes (above), so close-with-grace must not treat it as a shutdown.
  closeWithGrace({ delay: config.shutdownGraceMs, skip: ['SIGHUP'] }, async ({ signal, err }) => {
    if (err !== undefined) gateway.log.error({ err }, 'shutting down after an error')
    else gateway.log.info({ signal }, 'shutting down')
    await gateway.close()
  })

  await gateway.listen({ port: config.port, host: config.host })
}

await main()
