package com.acme.shop;

import java.util.List;
import java.util.*;
import static com.acme.util.Strings.join;

/** A cart.
 * More. */
@Entity
public class Cart<T> extends Base implements Serializable {
    public static final int MAX_ITEMS = 10;
    private List<T> items, other;
    /** Makes a cart. */
    public Cart(int size) {}
    /**
     * Adds an item.
     */
    @Override
    public <R> boolean add(T item,
                           int... counts) throws IOException { return true; }
    interface Listener { void onAdd(Item item); int LIMIT = 3; }
    enum Kind { A, B; private int weight; Kind next() { return A; } }
    record Pair(int a, int b) {}
}
