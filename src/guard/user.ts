// Confirms that guard.sluice_user names a user on this host before the guard is rendered or loaded:
// nft resolves `meta skuid "NAME"` only when the ruleset loads, and then says just "User does not exist".
import { execFile } from 'node:child_process';
import { SluiceError } from '../errors.js';

/** `id -u` asks NSS (files, LDAP, sssd), as nft's getpwnam does; /etc/passwd alone would miss some. */
function userExists(name: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    execFile('id', ['-u', '--', name], (error) => {
      if (error === null) resolve(true);
      else if (typeof error.code === 'number') resolve(false);
      else reject(new SluiceError('GUARD_APPLY_FAILED', `cannot look up guard.sluice_user "${name}" with id: ${error.message}`, { cause: error }));
    });
  });
}

/** Throws a plain error naming the user, the config and the fix when the name is unknown here. */
export async function requireSluiceUser(user: number | string, configFile: string | null): Promise<void> {
  // A numeric uid needs no account: nft matches the number as written.
  if (typeof user === 'number' || (await userExists(user))) return;
  const where = configFile ?? 'the built-in defaults';
  throw new SluiceError(
    'GUARD_APPLY_FAILED',
    `${where}: guard.sluice_user "${user}" is not a user on this host, so nft cannot match it. Create it (useradd --system ${user}) or set guard.sluice_user to the numeric uid Sluice runs as.`,
  );
}
