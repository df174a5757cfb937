/* SPDX-License-Identifier: MIT */
#include <inttypes.h>

#include "base/hashindex.h"
#include "base/json-util.h"
#include "query/query-internal.h"

/* The most nodes a tree query builds: the hottest stacks get theirs first. */
#define TREE_NODES_MAX 100000u

typedef struct TreeNode {
	uint32_t parent; /* node 0 is the root above every outermost frame */
	FrameId frame;	 /* a representative frame of the function */
	uint64_t key;	 /* query_func_key() */
	uint64_t self, total;
	uint32_t first_child, n_children; /* into Tree.order */
	bool group;			  /* a process name's node (by comm) */
	StrId comm;			  /* ... the name */
	uint32_t processes;		  /* ... and how many processes have it */
} TreeNode;

typedef struct Tree {
	const Store *store;
	TreeNode *nodes;
	size_t n, allocated;
	HashIndex *index;
	uint32_t *order; /* node ids grouped by parent, each group by total, descending */
	uint64_t samples, truncated;
	double min_pct;
	const Viewer *viewer;
	const char *from;    /* req->function: each stack from its outermost call of it */
	uint64_t from_total; /* the samples with it on their stack */
} Tree;

/* Keys of the nodes of process names: no function's (query_func_key()) has both top bits. */
#define TREE_COMM_KEY (3ULL << 62)

typedef struct TreeKey {
	uint32_t parent;
	uint64_t key;
} TreeKey;

static bool tree_eq(uint32_t idx, const void *key, void *userdata)
{
	const TreeNode *node = &((Tree *)userdata)->nodes[idx];
	const TreeKey *k = key;

	return node->parent == k->parent && node->key == k->key;
}

static uint64_t tree_hash(const TreeKey *k)
{
	return (k->key * 0x9E3779B97F4A7C15ULL ^ k->parent) * 0xC2B2AE3D27D4EB4FULL;
}

/* The child of parent for a frame: 0 and *ret, or -E2BIG when the tree is full. */
static int tree_child_keyed(Tree *t, uint32_t parent, FrameId id, uint64_t k, uint32_t *ret)
{
	TreeKey key = { .parent = parent, .key = k };
	uint64_t hash = tree_hash(&key);
	uint32_t idx;
	int r;

	if (hash_index_find(t->index, hash, tree_eq, &key, t, &idx) == 0) {
		*ret = idx;
		return 0;
	}
	if (t->n > TREE_NODES_MAX) /* node 0, the root, is not one of them */
		return -E2BIG;
	r = GREEDY_REALLOC(t->nodes, t->allocated, t->n + 1);
	if (r < 0)
		return r;
	r = hash_index_insert(t->index, hash, (uint32_t)t->n);
	if (r < 0)
		return r;
	t->nodes[t->n] = (TreeNode){ .parent = parent, .frame = id, .key = key.key };
	*ret = (uint32_t)t->n++;
	return 0;
}

static int tree_child(Tree *t, uint32_t parent, FrameId id, const StoreFrame *f, uint32_t *ret)
{
	return tree_child_keyed(t, parent, id, query_func_key(t->viewer, id, f), ret);
}

/* The node of a process name under the root. */
static int tree_comm(Tree *t, StrId comm, uint32_t *ret)
{
	int r = tree_child_keyed(t, 0, 0, TREE_COMM_KEY | comm, ret);

	if (r >= 0) {
		t->nodes[*ret].group = true;
		t->nodes[*ret].comm = comm;
	}
	return r;
}

static const char *node_function(const Tree *t, uint32_t id)
{
	if (t->nodes[id].group)
		return strempty(store_string(t->store, t->nodes[id].comm));
	return strempty(
		store_string(t->store, store_frame(t->store, t->nodes[id].frame)->function));
}

static int cmp_tree_order(const void *a, const void *b, void *userdata)
{
	const Tree *t = userdata;
	const TreeNode *x = &t->nodes[*(const uint32_t *)a], *y = &t->nodes[*(const uint32_t *)b];
	int c;

	if (x->parent != y->parent)
		return x->parent < y->parent ? -1 : 1;
	if (x->total != y->total)
		return x->total > y->total ? -1 : 1;
	c = strcmp(node_function(t, *(const uint32_t *)a), node_function(t, *(const uint32_t *)b));
	if (c != 0)
		return c;
	return x->key < y->key ? -1 : x->key > y->key;
}

/* The index in frames[0..depth) (leaf first) where a stack starts: its outermost frame, or
 * with t->from the outermost shown frame of that function; depth when it has none. */
static size_t tree_start(const Tree *t, const Request *req, const FrameId *frames, size_t depth)
{
	if (!t->from)
		return depth - 1;
	for (size_t i = depth; i-- > 0;) {
		const StoreFrame *f = store_frame(t->store, frames[i]);

		if (query_frame_shown(req, f) && query_frame_is_function(t->store, f, t->from))
			return i;
	}
	return depth;
}

/* Adds c samples of stack under node cur (the root or a process name's node). */
static int tree_add_stack(Tree *t, const Request *req, StackId stack, uint64_t c, uint32_t cur)
{
	size_t depth;
	const FrameId *frames = store_stack(t->store, stack, &depth);
	size_t start = depth ? tree_start(t, req, frames, depth) : 0;
	int r;

	if (t->from && start >= depth)
		return 0; /* not through the function */
	t->from_total += c;
	t->nodes[0].total += c;
	if (cur != 0)
		t->nodes[cur].total += c;
	for (size_t i = start + 1; depth && i-- > 0;) {
		const StoreFrame *f = store_frame(t->store, frames[i]);
		uint32_t child;

		if (!query_frame_shown(req, f))
			continue;
		r = tree_child(t, cur, frames[i], f, &child);
		if (r == -E2BIG) {
			/* Past the cap: the prefix keeps its totals, the rest counts. */
			t->truncated += c;
			return 0;
		}
		if (r < 0)
			return r;
		cur = child;
		t->nodes[cur].total += c;
	}
	t->nodes[cur].self += c;
	return 0;
}

/* With req->by comm: each stack under the node of its process's name, and how many processes
 * each name has. */
static int tree_build_by_comm(Tree *t, const QueryContext *ctx, const Request *req,
			      const Selection *sel)
{
	_cleanup_free_ CommStackCount *stacks = NULL;
	size_t n;
	int r;

	r = selection_stacks_by_comm(ctx, req, sel, &stacks, &n);
	if (r < 0)
		return r;
	for (size_t k = 0; k < n; k++) {
		size_t depth;
		const FrameId *frames = store_stack(t->store, stacks[k].stack, &depth);
		uint32_t group;

		/* No name's node without a stack through the function. */
		if (t->from && (depth == 0 || tree_start(t, req, frames, depth) >= depth))
			continue;
		r = tree_comm(t, stacks[k].comm, &group);
		if (r == -E2BIG) {
			t->truncated += stacks[k].count;
			continue;
		}
		if (r >= 0)
			r = tree_add_stack(t, req, stacks[k].stack, stacks[k].count, group);
		if (r < 0)
			return r;
	}
	for (ProcId p = 1; p < store_proc_id_limit(t->store); p++) {
		const StoreProc *proc = sel->procs[p] ? store_proc(t->store, p) : NULL;
		TreeKey key = { .parent = 0, .key = TREE_COMM_KEY | (proc ? proc->comm : 0) };
		uint32_t idx;

		if (proc && hash_index_find(t->index, tree_hash(&key), tree_eq, &key, t, &idx) == 0)
			t->nodes[idx].processes++;
	}
	return 0;
}

/* Adds the stacks, hottest first, root (outermost frame) down. */
static int tree_build(Tree *t, const QueryContext *ctx, const Request *req, const Selection *sel)
{
	_cleanup_free_ StackCount *stacks = NULL;
	size_t n = 0;
	int r;

	r = GREEDY_REALLOC(t->nodes, t->allocated, 1);
	if (r < 0)
		return r;
	t->nodes[0] = (TreeNode){ 0 };
	t->n = 1;
	if (req->by == GROUP_COMM)
		r = tree_build_by_comm(t, ctx, req, sel);
	else
		r = selection_stacks_by_count(sel, &stacks, &n);
	if (r < 0)
		return r;
	for (size_t k = 0; k < n; k++) {
		r = tree_add_stack(t, req, stacks[k].stack, stacks[k].count, 0);
		if (r < 0)
			return r;
	}

	/* Children by parent, hottest first. */
	t->order = calloc(t->n, sizeof(uint32_t));
	if (!t->order)
		return -ENOMEM;
	for (uint32_t i = 1; i < t->n; i++)
		t->order[i - 1] = i;
	qsort_r(t->order, t->n - 1, sizeof(uint32_t), cmp_tree_order, t);
	for (size_t i = t->n - 1; i-- > 0;) {
		TreeNode *p = &t->nodes[t->nodes[t->order[i]].parent];

		p->first_child = (uint32_t)i;
		p->n_children++;
	}
	return 0;
}

static bool tree_shown(const Tree *t, uint32_t id)
{
	return query_pct(t->nodes[id].total, t->samples) >= t->min_pct;
}

/* The children of node id that are shown, as a JSON array. Recursion depth is the stack's. */
static int tree_children_json(const Tree *t, uint32_t id, size_t *shown, json_object **ret)
{
	const TreeNode *node = &t->nodes[id];
	_cleanup_json_ json_object *arr = json_object_new_array();

	if (!arr)
		return -ENOMEM;
	for (uint32_t k = 0; k < node->n_children; k++) {
		uint32_t c = t->order[node->first_child + k];
		const TreeNode *child = &t->nodes[c];
		json_object *o, *children;
		char name[512];
		int r;

		/* Siblings go hottest first: the rest are smaller still. */
		if (!tree_shown(t, c))
			break;
		o = json_object_new_object();
		if (!o)
			return -ENOMEM;
		json_object_array_add(arr, o);
		(*shown)++;
		if (child->group) {
			/* A process name's node: no function of its own. */
			json_add_string(o, "comm", node_function(t, c));
			json_add_int(o, "processes", child->processes);
			json_add_int(o, "self_samples", (int64_t)child->self);
			json_add_int(o, "total_samples", (int64_t)child->total);
			json_add_double(o, "self_pct", query_pct(child->self, t->samples), 2);
			json_add_double(o, "total_pct", query_pct(child->total, t->samples), 2);
		} else {
			const StoreFrame *f = store_frame(t->store, child->frame);

			query_frame_name(t->store, f, t->viewer, name, sizeof(name));
			json_add_string(o, "function", name);
			query_add_function_samples(o, t->store, f, child->self, child->total,
						   t->samples);
		}
		r = tree_children_json(t, c, shown, &children);
		if (r < 0)
			return r;
		json_object_object_add(o, "children", children);
	}
	*ret = TAKE_PTR(arr);
	return 0;
}

/*
 * Top-down: the outermost frame of each stack is a root; a node's children are the functions
 * it called, its total the samples with that call path, its self those that ended in it.
 * Recursion nests. Nodes under min_pct of the samples are left out with their subtrees.
 */
int query_answer_tree(const QueryContext *ctx, const Request *req, const Selection *sel,
		      json_object **ret)
{
	_cleanup_json_ json_object *answer = NULL;
	json_object *rows;
	Tree t = { .store = ctx->store,
		   .min_pct = req->min_pct,
		   .viewer = &ctx->viewer,
		   .from = req->function[0] ? req->function : NULL };
	size_t shown = 0;
	int r;

	t.samples = sel->total;

	r = hash_index_new(&t.index);
	if (r >= 0)
		r = tree_build(&t, ctx, req, sel);
	if (r >= 0)
		r = tree_children_json(&t, 0, &shown, &rows);
	if (r < 0)
		goto out;
	answer = json_object_new_object();
	if (!answer) {
		json_object_put(rows);
		r = -ENOMEM;
		goto out;
	}
	query_add_selection(ctx, req, sel, answer);
	query_add_frame_options(req, answer);
	json_add_double(answer, "min_pct", req->min_pct, 2);
	json_add_int(answer, "nodes", (int64_t)(t.n - 1));
	json_add_int(answer, "nodes_shown", (int64_t)shown);
	json_add_int(answer, "truncated_samples", (int64_t)t.truncated);
	if (req->by == GROUP_COMM)
		json_add_string(answer, "by", "comm");
	if (t.from) {
		json_add_string(answer, "from", t.from);
		json_add_int(answer, "from_samples", (int64_t)t.from_total);
		json_add_double(answer, "from_pct", query_pct(t.from_total, t.samples), 2);
	}
	json_object_object_add(answer, "rows", rows);
	*ret = TAKE_PTR(answer);
	r = 0;
out:
	free(t.nodes);
	free(t.order);
	hash_index_free(t.index);
	return r;
}
