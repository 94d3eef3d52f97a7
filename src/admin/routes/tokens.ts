// /v1/tokens: list, create and revoke admin API tokens (admin role). A created token is returned
// once, in the reply; only its SHA-256 is written to the state directory.
import { isRole } from '../roles.js';
import { apiError, type Route } from '../router.js';
import { requiredString } from '../fields.js';
import { createToken, revokeToken, TOKEN_NAME, TokenFileError, type TokenRegistry } from '../tokens.js';

export function tokenRoutes(tokens: TokenRegistry, now: () => number): Route[] {
  return [
    {
      method: 'GET',
      path: '/v1/tokens',
      role: 'admin',
      handle: async () => ({ status: 200, body: { tokens: (await tokens.list()).map(({ name, role, created, source }) => ({ name, role, created, source })) } }),
    },
    {
      method: 'POST',
      path: '/v1/tokens',
      role: 'admin',
      handle: async (request) => {
        const body = await request.body();
        const name = requiredString(body, 'name', TOKEN_NAME);
        const role = body['role'];
        if (!isRole(role)) throw apiError('ADMIN_BAD_REQUEST', 'role: expected viewer, approver or admin');
        if ((await tokens.list()).some((token) => token.name === name)) throw apiError('ADMIN_CONFLICT', `a token named "${name}" exists already`);
        try {
          const token = await createToken(tokens.file, name, role, new Date(now()));
          await tokens.refresh();
          return { status: 201, body: { name, role, token } };
        } catch (error) {
          if (error instanceof TokenFileError) throw apiError('ADMIN_CONFLICT', error.message);
          throw error;
        }
      },
    },
    {
      method: 'DELETE',
      path: '/v1/tokens/{name}',
      role: 'admin',
      handle: async (request) => {
        const name = request.params['name'] ?? '';
        const known = (await tokens.list()).find((token) => token.name === name);
        if (known === undefined) throw apiError('ADMIN_NOT_FOUND', `no token named "${name}"`);
        if (known.source === 'config') throw apiError('ADMIN_CONFLICT', `token "${name}" comes from the config (admin.tokens); remove it there`);
        await revokeToken(tokens.file, name);
        await tokens.refresh();
        return { status: 200, body: { revoked: name } };
      },
    },
  ];
}
