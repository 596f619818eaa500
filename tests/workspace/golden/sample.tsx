import React, { useState } from "react";
import type { Props } from "./types";

/** Props of the button. */
export interface ButtonProps {
  label: string;
  onClick?: () => void;
}

/** A button. */
export function Button({ label, onClick }: ButtonProps): JSX.Element {
  return <button onClick={onClick}>{label}</button>;
}

export const Counter = ({ start = 0 }: { start?: number }) => {
  const [n, setN] = useState(start);
  return <span>{n}</span>;
};

export default class Panel extends React.Component<Props> {
  render() { return <div />; }
}
