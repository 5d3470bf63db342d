// Starts a local AT Protocol network (PLC, PDS, bsky AppView, bsync, ozone) from @atproto/dev-env on fixed
// loopback ports, for fairdesk's `bluesky` tests. Run by scripts/bluesky-network, which copies this file next to
// the cached node_modules (ES modules resolve packages from the file's own folder).
//
// Env: DB_POSTGRES_URL (required; the database is created if missing), DB_POSTGRES_SCHEMA (default "fairdesk"),
//      REDIS_HOST (TestNetwork asserts it is set; nothing connects to it), FAIRDESK_BSKY_RUN_DIR (where the
//      ready file goes; default: this file's folder). Stop with SIGTERM or SIGINT: the network closes cleanly.
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { TestNetwork } from '@atproto/dev-env'

const PORTS = { plc: 2582, pds: 2583, bsky: 2584, ozone: 2587 }
const LOOPBACK = '127.0.0.1'

// dev-env's servers listen on every interface; the tests only ever need loopback, so a listen() that names no host
// gets 127.0.0.1.
const listen = net.Server.prototype.listen
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' && typeof args[1] !== 'string') args.splice(1, 0, LOOPBACK)
  else if (args[0] && typeof args[0] === 'object' && args[0].host === undefined && args[0].path === undefined) {
    args[0] = { ...args[0], host: LOOPBACK }
  }
  return listen.apply(this, args)
}
const t0 = Date.now()
const runDir = process.env.FAIRDESK_BSKY_RUN_DIR || path.dirname(fileURLToPath(import.meta.url))
const readyFile = path.join(runDir, 'network.ready')
const schema = process.env.DB_POSTGRES_SCHEMA || 'fairdesk'
process.env.DB_POSTGRES_SCHEMA = schema
process.env.REDIS_HOST = process.env.REDIS_HOST || '127.0.0.1:6379'
fs.rmSync(readyFile, { force: true })

async function prepareDatabase(url) {
  // PLC lives in memory and the PDS gets fresh temp dirs on every start, so rows left in Postgres by an earlier
  // start would point at DIDs that no longer exist: every start drops the schemas and begins from an empty network.
  const target = new URL(url)
  const dbName = decodeURIComponent(target.pathname.slice(1))
  const admin = new URL(url)
  admin.pathname = '/postgres'
  const a = new pg.Client({ connectionString: admin.toString() })
  await a.connect()
  const found = await a.query('SELECT 1 FROM pg_database WHERE datname = $1', [dbName])
  if (found.rowCount === 0) await a.query(`CREATE DATABASE "${dbName}"`)
  await a.end()
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  for (const s of [`appview_${schema}`, `bsync_${schema}`, `ozone_${schema}`]) {
    await c.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`)
  }
  await c.end()
}

await prepareDatabase(process.env.DB_POSTGRES_URL)

const network = await TestNetwork.create({
  dbPostgresSchema: schema,
  plc: { port: PORTS.plc },
  pds: { port: PORTS.pds, hostname: 'localhost', enableDidDocWithSession: true },
  bsky: { port: PORTS.bsky, publicUrl: `http://localhost:${PORTS.bsky}` },
  ozone: { port: PORTS.ozone, chatUrl: 'http://localhost:2590', chatDid: 'did:example:chat' },
})

console.log(`PLC       ${network.plc.url}`)
console.log(`PDS       ${network.pds.url}`)
console.log(`AppView   ${network.bsky.url}  did=${network.bsky.serverDid}`)
console.log(`Ozone     ${network.ozone.url}`)
console.log(`READY in ${((Date.now() - t0) / 1000).toFixed(1)}s pid=${process.pid}`)
fs.writeFileSync(readyFile, JSON.stringify({ pid: process.pid, pds: network.pds.url, appview: network.bsky.url }))

let closing = false
const shutdown = async (sig) => {
  if (closing) return
  closing = true
  console.log(`${sig}: closing network`)
  fs.rmSync(readyFile, { force: true })
  try {
    await network.close()
  } catch (e) {
    console.error('close error', e)
  }
  console.log('closed')
  process.exit(0)
}
process.on('SIGTERM', () => shutdown('SIGTERM'))
process.on('SIGINT', () => shutdown('SIGINT'))
