// The error for a bad `connect` configuration section: names the exact field (with its index) so
// the operator can find the entry, and carries the same code as every other config problem.
import { OperatorError } from '../errors.js';

export class ConnectConfigError extends OperatorError {
  /** e.g. `connect.allow_cidrs[2]` */
  readonly field: string;

  constructor(field: string, message: string) {
    super('CONFIG_INVALID', `${field}: ${message}`);
    this.name = 'ConnectConfigError';
    this.field = field;
  }
}
