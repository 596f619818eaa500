'use strict';
const path = require("path");
const { readFile, writeFile: write } = require("./fs-utils");
import Default, * as all from "../lib/all.js";

/** Greeting used everywhere. */
const GREETING = "hi";
var counter = 0;

/**
 * Say hello.
 * @param {string} name
 */
function greet(name, punctuation = "!") {
  return GREETING + name + punctuation;
}

/** A counter. */
class Counter extends EventEmitter {
  count = 0;
  static #instances = 0;
  /** Increment by `by`. */
  increment(by = 1) { this.count += by; }
  async *ticks() {}
}

const twice = function (x) { return 2 * x; };
exports.helper = (a, b) => a + b;
module.exports.VERSION = "1.0";
