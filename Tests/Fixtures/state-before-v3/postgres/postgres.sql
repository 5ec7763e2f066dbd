--
-- PostgreSQL database dump
--

\restrict QP5M5srPYLiBT6cCFzzGULdQOq4fXZehnyXsqH68oGaEYXXFqaXgzDaTKM8HrL5

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: account_entry; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.account_entry (
    id bigint NOT NULL,
    tenant text NOT NULL,
    kind text NOT NULL,
    amount_micros bigint NOT NULL,
    discount_ppm bigint NOT NULL,
    currency text NOT NULL,
    reference text NOT NULL,
    recorded_by text NOT NULL,
    at bigint NOT NULL,
    expires bigint,
    reverses bigint
);


--
-- Name: account_entry_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.account_entry_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: account_entry_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.account_entry_id_seq OWNED BY public.account_entry.id;


--
-- Name: journal; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.journal (
    id bigint NOT NULL,
    run_id bigint NOT NULL,
    change_id text NOT NULL,
    address text NOT NULL,
    node text NOT NULL,
    region text NOT NULL,
    action text NOT NULL,
    reason text NOT NULL,
    status text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    error text,
    updated_at double precision NOT NULL,
    meters text,
    started_at bigint,
    fence bigint,
    CONSTRAINT journal_status_check CHECK ((status = ANY (ARRAY['planned'::text, 'started'::text, 'done'::text, 'failed'::text, 'skipped'::text])))
);


--
-- Name: journal_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.journal_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: journal_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.journal_id_seq OWNED BY public.journal.id;


--
-- Name: meter_interval; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.meter_interval (
    id bigint NOT NULL,
    resource text NOT NULL,
    address text NOT NULL,
    tenant text NOT NULL,
    kind text NOT NULL,
    item text NOT NULL,
    quantity bigint NOT NULL,
    period text NOT NULL,
    price_list text NOT NULL,
    start bigint NOT NULL,
    stop bigint,
    opened_by text NOT NULL,
    closed_by text
);


--
-- Name: meter_interval_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.meter_interval_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: meter_interval_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.meter_interval_id_seq OWNED BY public.meter_interval.id;


--
-- Name: node_inventory; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.node_inventory (
    region text NOT NULL,
    name text NOT NULL,
    libvirt text NOT NULL,
    cpus integer NOT NULL,
    memory_kib bigint NOT NULL,
    host_key text,
    file_root text,
    updated_at double precision NOT NULL
);


--
-- Name: pipeline_run; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.pipeline_run (
    id bigint NOT NULL,
    kind text NOT NULL,
    pipeline text NOT NULL,
    subject text NOT NULL,
    commit_id text NOT NULL,
    verdict integer NOT NULL,
    started_at double precision NOT NULL,
    seconds double precision NOT NULL,
    steps text NOT NULL
);


--
-- Name: pipeline_run_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.pipeline_run_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: pipeline_run_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.pipeline_run_id_seq OWNED BY public.pipeline_run.id;


--
-- Name: placement; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.placement (
    address text NOT NULL,
    node text NOT NULL,
    ip text NOT NULL,
    spec_hash text NOT NULL,
    updated_at double precision NOT NULL
);


--
-- Name: reconciler; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.reconciler (
    owner text NOT NULL,
    host text NOT NULL,
    pid integer NOT NULL,
    role text NOT NULL,
    lease_seconds double precision NOT NULL,
    started_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    heartbeat_at timestamp with time zone NOT NULL
);


--
-- Name: region_lease; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.region_lease (
    region text NOT NULL,
    owner text NOT NULL,
    token bigint NOT NULL,
    acquired_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL
);


--
-- Name: region_memo; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.region_memo (
    region text NOT NULL,
    key text NOT NULL,
    plan bytea NOT NULL,
    updated_at double precision NOT NULL
);


--
-- Name: ring_state; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.ring_state (
    address text NOT NULL,
    state bytea NOT NULL,
    checksum text NOT NULL,
    generation bigint DEFAULT 1 NOT NULL,
    updated_at double precision NOT NULL
);


--
-- Name: run; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.run (
    id bigint NOT NULL,
    regions text NOT NULL,
    revision text,
    pid integer NOT NULL,
    owner text NOT NULL,
    status text NOT NULL,
    started_at double precision NOT NULL,
    finished_at double precision,
    fences text DEFAULT ''::text NOT NULL,
    undoes text,
    CONSTRAINT run_status_check CHECK ((status = ANY (ARRAY['running'::text, 'succeeded'::text, 'failed'::text, 'interrupted'::text])))
);


--
-- Name: run_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.run_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: run_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.run_id_seq OWNED BY public.run.id;


--
-- Name: schema_migration; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.schema_migration (
    version text NOT NULL,
    applied_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL
);


--
-- Name: account_entry id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.account_entry ALTER COLUMN id SET DEFAULT nextval('public.account_entry_id_seq'::regclass);


--
-- Name: journal id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.journal ALTER COLUMN id SET DEFAULT nextval('public.journal_id_seq'::regclass);


--
-- Name: meter_interval id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.meter_interval ALTER COLUMN id SET DEFAULT nextval('public.meter_interval_id_seq'::regclass);


--
-- Name: pipeline_run id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.pipeline_run ALTER COLUMN id SET DEFAULT nextval('public.pipeline_run_id_seq'::regclass);


--
-- Name: run id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.run ALTER COLUMN id SET DEFAULT nextval('public.run_id_seq'::regclass);


--
-- Data for Name: account_entry; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.account_entry (id, tenant, kind, amount_micros, discount_ppm, currency, reference, recorded_by, at, expires, reverses) FROM stdin;
1	acme	deposit	100000000	0	CNY		unknown	1796422561	\N	\N
\.


--
-- Data for Name: journal; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.journal (id, run_id, change_id, address, node, region, action, reason, status, attempts, error, updated_at, meters, started_at, fence) FROM stdin;
1	1	network/edge/private@node/edge/edge-1	network/edge/private	node/edge/edge-1	edge	create	new	done	1	\N	1796422560.832229	\N	1796422560	1
4	1	dhcp/edge/edge-1@node/edge/edge-1	dhcp/edge/edge-1	node/edge/edge-1	edge	create	new	done	1	\N	1796422560.8326378	\N	1796422560	1
5	1	firewall/edge/edge-1@node/edge/edge-1	firewall/edge/edge-1	node/edge/edge-1	edge	create	new	done	1	\N	1796422560.8329773	\N	1796422560	1
2	1	network/edge/private@node/edge/edge-2	network/edge/private	node/edge/edge-2	edge	create	new	done	1	\N	1796422560.837538	\N	1796422560	1
6	1	dhcp/edge/edge-2@node/edge/edge-2	dhcp/edge/edge-2	node/edge/edge-2	edge	create	new	done	1	\N	1796422560.8379107	\N	1796422560	1
7	1	firewall/edge/edge-2@node/edge/edge-2	firewall/edge/edge-2	node/edge/edge-2	edge	create	new	done	1	\N	1796422560.838243	\N	1796422560	1
3	1	network/edge/private@node/edge/edge-3	network/edge/private	node/edge/edge-3	edge	create	new	done	1	\N	1796422560.8424635	\N	1796422560	1
8	1	dhcp/edge/edge-3@node/edge/edge-3	dhcp/edge/edge-3	node/edge/edge-3	edge	create	new	done	1	\N	1796422560.842845	\N	1796422560	1
9	1	firewall/edge/edge-3@node/edge/edge-3	firewall/edge/edge-3	node/edge/edge-3	edge	create	new	done	1	\N	1796422560.843182	\N	1796422560	1
10	1	ring/edge/object@region/edge	ring/edge/object	region/edge	edge	create	new	done	1	\N	1796422560.8468554	\N	1796422560	1
11	1	ring/edge/object@node/edge/edge-1	ring/edge/object	node/edge/edge-1	edge	create	new	done	1	\N	1796422560.850846	\N	1796422560	1
12	1	ring/edge/object@node/edge/edge-2	ring/edge/object	node/edge/edge-2	edge	create	new	done	1	\N	1796422560.8559809	\N	1796422560	1
13	1	ring/edge/object@node/edge/edge-3	ring/edge/object	node/edge/edge-3	edge	create	new	done	1	\N	1796422560.8597832	\N	1796422560	1
14	1	network/lab/private@node/lab/lab-1	network/lab/private	node/lab/lab-1	lab	create	new	done	1	\N	1796422560.8699503	\N	1796422560	1
18	1	instance/lab/acme/web-2@node/lab/lab-1	instance/lab/acme/web-2	node/lab/lab-1	lab	create	new	done	1	\N	1796422560.8702812	[{"address":"instance\\/lab\\/acme\\/web-2","item":"m1.large","kind":"instance","period":"hourly","priceList":"standard","quantity":1,"resource":"instance\\/lab\\/acme\\/web-2","tenant":"acme"}]	1796422560	1
20	1	dhcp/lab/lab-1@node/lab/lab-1	dhcp/lab/lab-1	node/lab/lab-1	lab	create	new	done	1	\N	1796422560.8724642	\N	1796422560	1
21	1	firewall/lab/lab-1@node/lab/lab-1	firewall/lab/lab-1	node/lab/lab-1	lab	create	new	done	1	\N	1796422560.8728042	\N	1796422560	1
15	1	network/lab/private@node/lab/lab-2	network/lab/private	node/lab/lab-2	lab	create	new	done	1	\N	1796422560.8790007	\N	1796422560	1
17	1	instance/lab/acme/web-1@node/lab/lab-2	instance/lab/acme/web-1	node/lab/lab-2	lab	create	new	done	1	\N	1796422560.8793163	[{"address":"instance\\/lab\\/acme\\/web-1","item":"m1.small","kind":"instance","period":"hourly","priceList":"standard","quantity":1,"resource":"instance\\/lab\\/acme\\/web-1","tenant":"acme"},{"address":"volume\\/lab\\/acme\\/data","item":"100GiB","kind":"volume","period":"gbMonth","priceList":"standard","quantity":100,"resource":"volume\\/lab\\/v-a4a281a091332f2c","tenant":"acme"}]	1796422560	1
22	1	dhcp/lab/lab-2@node/lab/lab-2	dhcp/lab/lab-2	node/lab/lab-2	lab	create	new	done	1	\N	1796422560.8809834	\N	1796422560	1
23	1	firewall/lab/lab-2@node/lab/lab-2	firewall/lab/lab-2	node/lab/lab-2	lab	create	new	done	1	\N	1796422560.881279	[{"address":"floatingip\\/lab\\/acme\\/web","item":"","kind":"floatingIP","period":"daily","priceList":"standard","quantity":1,"resource":"floatingip\\/lab\\/acme\\/web","tenant":"acme"}]	1796422560	1
16	1	network/lab/private@node/lab/lab-3	network/lab/private	node/lab/lab-3	lab	create	new	done	1	\N	1796422560.8880944	\N	1796422560	1
19	1	instance/lab/other/db-1@node/lab/lab-3	instance/lab/other/db-1	node/lab/lab-3	lab	create	new	done	1	\N	1796422560.8884234	[{"address":"instance\\/lab\\/other\\/db-1","item":"m1.small","kind":"instance","period":"hourly","priceList":"standard","quantity":1,"resource":"instance\\/lab\\/other\\/db-1","tenant":"other"}]	1796422560	1
24	1	dhcp/lab/lab-3@node/lab/lab-3	dhcp/lab/lab-3	node/lab/lab-3	lab	create	new	done	1	\N	1796422560.8896313	\N	1796422560	1
25	1	firewall/lab/lab-3@node/lab/lab-3	firewall/lab/lab-3	node/lab/lab-3	lab	create	new	done	1	\N	1796422560.8899128	\N	1796422560	1
26	1	ring/lab/object@region/lab	ring/lab/object	region/lab	lab	create	new	done	1	\N	1796422560.8929381	\N	1796422560	1
27	1	ring/lab/object@node/lab/lab-1	ring/lab/object	node/lab/lab-1	lab	create	new	done	1	\N	1796422560.8956418	\N	1796422560	1
28	1	ring/lab/object@node/lab/lab-2	ring/lab/object	node/lab/lab-2	lab	create	new	done	1	\N	1796422560.9023478	\N	1796422560	1
29	1	ring/lab/object@node/lab/lab-3	ring/lab/object	node/lab/lab-3	lab	create	new	done	1	\N	1796422560.9081655	\N	1796422560	1
\.


--
-- Data for Name: meter_interval; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.meter_interval (id, resource, address, tenant, kind, item, quantity, period, price_list, start, stop, opened_by, closed_by) FROM stdin;
1	instance/lab/acme/web-2	instance/lab/acme/web-2	acme	instance	m1.large	1	hourly	standard	1796422560	\N	instance/lab/acme/web-2@node/lab/lab-1	\N
2	instance/lab/acme/web-1	instance/lab/acme/web-1	acme	instance	m1.small	1	hourly	standard	1796422560	\N	instance/lab/acme/web-1@node/lab/lab-2	\N
3	volume/lab/v-a4a281a091332f2c	volume/lab/acme/data	acme	volume	100GiB	100	gbMonth	standard	1796422560	\N	instance/lab/acme/web-1@node/lab/lab-2	\N
4	floatingip/lab/acme/web	floatingip/lab/acme/web	acme	floatingIP		1	daily	standard	1796422560	\N	firewall/lab/lab-2@node/lab/lab-2	\N
5	instance/lab/other/db-1	instance/lab/other/db-1	other	instance	m1.small	1	hourly	standard	1796422560	\N	instance/lab/other/db-1@node/lab/lab-3	\N
\.


--
-- Data for Name: node_inventory; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.node_inventory (region, name, libvirt, cpus, memory_kib, host_key, file_root, updated_at) FROM stdin;
edge	edge-1	simulated	16	67108864	\N	\N	1796422560.8195906
edge	edge-2	simulated	16	67108864	\N	\N	1796422560.81998
edge	edge-3	simulated	16	67108864	\N	\N	1796422560.8201857
lab	lab-1	simulated	16	67108864	\N	\N	1796422560.8204336
lab	lab-2	simulated	16	67108864	\N	\N	1796422560.8206534
lab	lab-3	simulated	16	67108864	\N	\N	1796422560.8208432
\.


--
-- Data for Name: pipeline_run; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.pipeline_run (id, kind, pipeline, subject, commit_id, verdict, started_at, seconds, steps) FROM stdin;
\.


--
-- Data for Name: placement; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.placement (address, node, ip, spec_hash, updated_at) FROM stdin;
instance/lab/acme/web-2	node/lab/lab-1	10.20.0.3	f8f433711b750c20	1796422560.8706346
instance/lab/acme/web-1	node/lab/lab-2	10.20.0.10	451ab67138b26f8a	1796422560.8795965
instance/lab/other/db-1	node/lab/lab-3	10.20.0.4	38e8094209369772	1796422560.8887632
\.


--
-- Data for Name: reconciler; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.reconciler (owner, host, pid, role, lease_seconds, started_at, heartbeat_at) FROM stdin;
vm/4850/0f9e17f6	vm	4850	apply	15	2026-12-04 22:16:00.79175+00	2026-12-04 22:16:00.79175+00
\.


--
-- Data for Name: region_lease; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.region_lease (region, owner, token, acquired_at, expires_at) FROM stdin;
edge	vm/4850/0f9e17f6	1	2026-12-04 22:16:00.796856+00	2026-12-04 22:16:00.925988+00
lab	vm/4850/0f9e17f6	1	2026-12-04 22:16:00.797941+00	2026-12-04 22:16:00.926574+00
\.


--
-- Data for Name: region_memo; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.region_memo (region, key, plan, updated_at) FROM stdin;
edge	aab45247eb68196c2ccad4a8ef59f4f4aa3d8ab68faa5994e321ce2e1d46b0d8	\\x7b226368616e676573223a5b5d2c22756e6368616e676564223a362c226f727068616e73223a5b5d2c22726567696f6e223a2265646765222c2272696e6773223a5b5d2c226572726f7273223a5b5d2c2266696e6765727072696e7473223a7b226e6f64655c2f656467655c2f656467652d33223a2264663034386262616139383037306161222c226e6f64655c2f656467655c2f656467652d32223a2264663632643231313839303364353736222c226e6f64655c2f656467655c2f656467652d31223a2234363335623238333534343530616561227d2c22756e6d616e61676564223a5b5d2c22736574746c696e67223a66616c73657d	1796422560.92315
lab	f34adf0e451d6a74dfd63fb3d05303ab0d0ddf18db6c1295a1768edc3c7278dc	\\x7b2272696e6773223a5b5d2c226f727068616e73223a5b5d2c22756e6d616e61676564223a5b5d2c22726567696f6e223a226c6162222c22756e6368616e676564223a392c2266696e6765727072696e7473223a7b226e6f64655c2f6c61625c2f6c61622d31223a2264336166336461303265356265376339222c226e6f64655c2f6c61625c2f6c61622d33223a2265326466663734666663353835313538222c226e6f64655c2f6c61625c2f6c61622d32223a2261363132613538376634663133356464227d2c226572726f7273223a5b5d2c22736574746c696e67223a66616c73652c226368616e676573223a5b5d7d	1796422560.9236984
\.


--
-- Data for Name: ring_state; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.ring_state (address, state, checksum, generation, updated_at) FROM stdin;
ring/edge/object	\\x7b226275696c646572223a7b2264657669636573223a5b7b22646576696365223a22736462222c226964223a302c226970223a223137322e31362e33302e31222c226d657461223a22656467652d31222c227061727473223a3132382c22706f7274223a363230302c22726567696f6e223a312c22776569676874223a323030302c227a6f6e65223a317d2c7b22646576696365223a22736463222c226964223a312c226970223a223137322e31362e33302e31222c226d657461223a22656467652d31222c227061727473223a3132382c22706f7274223a363230302c22726567696f6e223a312c22776569676874223a323030302c227a6f6e65223a317d2c7b22646576696365223a22736462222c226964223a322c226970223a223137322e31362e33302e32222c226d657461223a22656467652d32222c227061727473223a3132382c22706f7274223a363230302c22726567696f6e223a312c22776569676874223a323030302c227a6f6e65223a327d2c7b22646576696365223a22736463222c226964223a332c226970223a223137322e31362e33302e32222c226d657461223a22656467652d32222c227061727473223a3132382c22706f7274223a363230302c22726567696f6e223a312c22776569676874223a323030302c227a6f6e65223a327d2c7b22646576696365223a22736462222c226964223a342c226970223a223137322e31362e33302e33222c226d657461223a22656467652d33222c227061727473223a3132382c22706f7274223a363230302c22726567696f6e223a312c22776569676874223a323030302c227a6f6e65223a337d2c7b22646576696365223a22736463222c226964223a352c226970223a223137322e31362e33302e33222c226d657461223a22656467652d33222c227061727473223a3132382c22706f7274223a363230302c22726567696f6e223a312c22776569676874223a323030302c227a6f6e65223a337d5d2c226d696e50617274486f757273223a312c226f7665726c6f6164223a302c2270617274506f776572223a382c2272656d6f76696e67223a5b5d2c227265706c69636173223a332c22726f774c656e67746873223a5b3235362c3235362c3235365d2c227461626c6573223a2265463774314d454e6744415141304554694e49566e644972706730794a2b336e6e70613953544c4b565935796c6c6d2b3835654450746746445c2f4141445c2f4141445c2f4141445c2f7a4c415c2f657a41686e6f774a346465414539384f6d42222c2276657273696f6e223a317d2c22636865636b73756d223a2233383062316535303662396662313262396637393536363663616534613737626663343938643032323239343365653964623738613966336339363231383937222c22646576696365494473223a7b22656467652d315c2f736462223a302c22656467652d315c2f736463223a312c22656467652d325c2f736462223a322c22656467652d325c2f736463223a332c22656467652d335c2f736462223a342c22656467652d335c2f736463223a357d2c2264697370657273696f6e223a302c226561726c696572436865636b73756d73223a5b5d2c22736574746c6564223a747275652c227a6f6e654e756d62657273223a7b22656467652d31223a312c22656467652d32223a322c22656467652d33223a337d7d	380b1e506b9fb12b9f795666cae4a77bfc498d0222943ee9db78a9f3c9621897	1	1796422560.845667
ring/lab/object	\\x7b226275696c646572223a7b2264657669636573223a5b7b22646576696365223a22736462222c226964223a302c226970223a223137322e31362e32302e31222c226d657461223a226c61622d31222c227061727473223a3132382c22706f7274223a363230302c22726567696f6e223a312c22776569676874223a323030302c227a6f6e65223a317d2c7b22646576696365223a22736463222c226964223a312c226970223a223137322e31362e32302e31222c226d657461223a226c61622d31222c227061727473223a3132382c22706f7274223a363230302c22726567696f6e223a312c22776569676874223a323030302c227a6f6e65223a317d2c7b22646576696365223a22736462222c226964223a322c226970223a223137322e31362e32302e32222c226d657461223a226c61622d32222c227061727473223a3132382c22706f7274223a363230302c22726567696f6e223a312c22776569676874223a323030302c227a6f6e65223a327d2c7b22646576696365223a22736463222c226964223a332c226970223a223137322e31362e32302e32222c226d657461223a226c61622d32222c227061727473223a3132382c22706f7274223a363230302c22726567696f6e223a312c22776569676874223a323030302c227a6f6e65223a327d2c7b22646576696365223a22736462222c226964223a342c226970223a223137322e31362e32302e33222c226d657461223a226c61622d33222c227061727473223a3132382c22706f7274223a363230302c22726567696f6e223a312c22776569676874223a323030302c227a6f6e65223a337d2c7b22646576696365223a22736463222c226964223a352c226970223a223137322e31362e32302e33222c226d657461223a226c61622d33222c227061727473223a3132382c22706f7274223a363230302c22726567696f6e223a312c22776569676874223a323030302c227a6f6e65223a337d5d2c226d696e50617274486f757273223a312c226f7665726c6f6164223a302c2270617274506f776572223a382c2272656d6f76696e67223a5b5d2c227265706c69636173223a332c22726f774c656e67746873223a5b3235362c3235362c3235365d2c227461626c6573223a2265463774314d454e6744415141304554694e49566e644972706730794a2b336e6e70613953544c4b565935796c6c6d2b3835654450746746445c2f4141445c2f4141445c2f4141445c2f7a4c415c2f657a41686e6f774a346465414539384f6d42222c2276657273696f6e223a317d2c22636865636b73756d223a2261626537313363636537356265623166656361366664383133313238656435306666643438366338316433626637363232313566613939373837326333393232222c22646576696365494473223a7b226c61622d315c2f736462223a302c226c61622d315c2f736463223a312c226c61622d325c2f736462223a322c226c61622d325c2f736463223a332c226c61622d335c2f736462223a342c226c61622d335c2f736463223a357d2c2264697370657273696f6e223a302c226561726c696572436865636b73756d73223a5b5d2c22736574746c6564223a747275652c227a6f6e654e756d62657273223a7b226c61622d31223a312c226c61622d32223a322c226c61622d33223a337d7d	abe713cce75beb1feca6fd813128ed50ffd486c81d3bf762215fa997872c3922	1	1796422560.892028
\.


--
-- Data for Name: run; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.run (id, regions, revision, pid, owner, status, started_at, finished_at, fences, undoes) FROM stdin;
1	edge,lab	76ff15ace6c511500a2c697d00f97e198c278e1d	4850	vm/4850/0f9e17f6	succeeded	1796422560.822893	1796422560.91192	edge=1,lab=1	\N
\.


--
-- Data for Name: schema_migration; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.schema_migration (version, applied_at) FROM stdin;
v1	2026-12-04 22:16:00.786134+00
v2	2026-12-04 22:16:00.787176+00
v3	2026-12-04 22:16:00.788213+00
v4	2026-12-04 22:16:00.788571+00
\.


--
-- Name: account_entry_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.account_entry_id_seq', 1, true);


--
-- Name: journal_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.journal_id_seq', 29, true);


--
-- Name: meter_interval_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.meter_interval_id_seq', 5, true);


--
-- Name: pipeline_run_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.pipeline_run_id_seq', 1, false);


--
-- Name: run_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.run_id_seq', 1, true);


--
-- Name: account_entry account_entry_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.account_entry
    ADD CONSTRAINT account_entry_pkey PRIMARY KEY (id);


--
-- Name: journal journal_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.journal
    ADD CONSTRAINT journal_pkey PRIMARY KEY (id);


--
-- Name: journal journal_run_id_change_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.journal
    ADD CONSTRAINT journal_run_id_change_id_key UNIQUE (run_id, change_id);


--
-- Name: meter_interval meter_interval_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.meter_interval
    ADD CONSTRAINT meter_interval_pkey PRIMARY KEY (id);


--
-- Name: meter_interval meter_interval_resource_start_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.meter_interval
    ADD CONSTRAINT meter_interval_resource_start_key UNIQUE (resource, start);


--
-- Name: node_inventory node_inventory_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.node_inventory
    ADD CONSTRAINT node_inventory_pkey PRIMARY KEY (region, name);


--
-- Name: pipeline_run pipeline_run_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.pipeline_run
    ADD CONSTRAINT pipeline_run_pkey PRIMARY KEY (id);


--
-- Name: placement placement_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.placement
    ADD CONSTRAINT placement_pkey PRIMARY KEY (address);


--
-- Name: reconciler reconciler_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.reconciler
    ADD CONSTRAINT reconciler_pkey PRIMARY KEY (owner);


--
-- Name: region_lease region_lease_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.region_lease
    ADD CONSTRAINT region_lease_pkey PRIMARY KEY (region);


--
-- Name: region_memo region_memo_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.region_memo
    ADD CONSTRAINT region_memo_pkey PRIMARY KEY (region);


--
-- Name: ring_state ring_state_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ring_state
    ADD CONSTRAINT ring_state_pkey PRIMARY KEY (address);


--
-- Name: run run_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.run
    ADD CONSTRAINT run_pkey PRIMARY KEY (id);


--
-- Name: schema_migration schema_migration_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.schema_migration
    ADD CONSTRAINT schema_migration_pkey PRIMARY KEY (version);


--
-- Name: account_coupon; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX account_coupon ON public.account_entry USING btree (tenant, reference) WHERE (kind = 'coupon'::text);


--
-- Name: account_reversal; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX account_reversal ON public.account_entry USING btree (reverses) WHERE (reverses IS NOT NULL);


--
-- Name: journal_by_address; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX journal_by_address ON public.journal USING btree (address);


--
-- Name: journal_by_change; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX journal_by_change ON public.journal USING btree (change_id);


--
-- Name: journal_interrupted; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX journal_interrupted ON public.journal USING btree (id) WHERE ((status = 'failed'::text) AND (error = 'interrupted'::text));


--
-- Name: meter_open; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX meter_open ON public.meter_interval USING btree (resource) WHERE (stop IS NULL);


--
-- Name: meter_tenant; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX meter_tenant ON public.meter_interval USING btree (tenant, start);


--
-- Name: run_running; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX run_running ON public.run USING btree (status) WHERE (status = 'running'::text);


--
-- Name: journal journal_run_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.journal
    ADD CONSTRAINT journal_run_id_fkey FOREIGN KEY (run_id) REFERENCES public.run(id);


--
-- PostgreSQL database dump complete
--

\unrestrict QP5M5srPYLiBT6cCFzzGULdQOq4fXZehnyXsqH68oGaEYXXFqaXgzDaTKM8HrL5

