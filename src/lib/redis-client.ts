/**
 * The Redis client every store takes (a single node or a Cluster), and the one place Lua scripts
 * become typed custom commands on it.
 */
import type { Cluster, Redis } from 'ioredis'

export type RedisClient = Redis | Cluster

/** One Lua script as ioredis defines it: KEYS come first in its arguments. */
export interface ScriptDefinition { numberOfKeys: number, lua: string }

/**
 * Defines each script as a custom command (ioredis loads it with EVALSHA, falling back to EVAL) and
 * returns the same client typed with those commands. `Commands` names each command's signature;
 * the definitions must cover exactly its names.
 */
export function defineScripts<Commands extends object> (redis: RedisClient,
  scripts: { [Name in keyof Commands]: ScriptDefinition }): RedisClient & Commands {
  for (const [name, definition] of Object.entries<ScriptDefinition>(scripts)) redis.defineCommand(name, definition)
  // ioredis adds the commands at run time under the names given; its types cannot know them.
  return redis as RedisClient & Commands
}
