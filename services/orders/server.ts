import { startStub } from '../shared/stub-server.js'
import { buildOrdersService } from './app.js'

await startStub(buildOrdersService, 'ORDERS_PORT', 3002)
