import fs, { readFile as rf } from "fs";
import * as path from "node:path";
import type { Foo } from './types';
import "./side-effect";
export { a, b as c } from "./ab";
export * from "./all";
export * as ns from "./ns";
const lodash = require("lodash");
const { a1, b: bee } = require("./ab");
import x = require("y");
/** Max retries.
 * more */
export const MAX_RETRIES: number = 3;
let counter = 0, other = () => 1;
export default function main(argv: string[], opts = {}): Promise<void> {}
/** Adds. */
export const add = (a: number, b = 2): number => a + b;
/** A shape. */
export interface Shape extends Base { /** Area. */ area(): number; name: string; readonly sides?: number }
export type ID = string | number;
enum Color { Red, Green = "g" }
/**
 * A point.
 */
@Component({a: 1})
export abstract class Point<T> extends Base implements Shape {
  static origin = new Point(0, 0);
  private x: number;
  constructor(public readonly x: number, y?: number) { super(); }
  /** Distance. */
  async distance(other: Point<T>): Promise<number> { return 0; }
  get norm(): number { return 1; }
  abstract area(): number;
}
function* gen() {}
declare function ambient(a: string): void;
function over(a: string): void;
exports.helper = function (a) { return a; };
namespace NS { export const q = 1; }
