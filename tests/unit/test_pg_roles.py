"""Reading what a dump needs of its target cluster (pg_restore's script of it) and the
statements that create a role (pg_dumpall --globals-only), as pg_dump 15 writes them."""

from __future__ import annotations

import pytest

from drtool.components import postgres
from drtool.core.model import PASSED
from tests import module_utils

utils = module_utils.load("postgres")

# Cut from `pg_restore --schema-only -f -` of a real pg_dump 15 archive.
SCRIPT = r'''--
-- PostgreSQL database dump
--

\restrict eaoqmEUFz5JteDeANXbAQn9dJYvxfG0y55uH2kigmMjsSukQJ7qgwlOa8FU4Ght

SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);

--
-- Name: shop; Type: SCHEMA; Schema: -; Owner: shop_owner
--

CREATE SCHEMA shop;


ALTER SCHEMA shop OWNER TO shop_owner;

--
-- Name: touch(); Type: FUNCTION; Schema: shop; Owner: shop_owner
--

CREATE FUNCTION shop.touch() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN NEW.updated_at := now(); -- Name: x; Type: TABLE; Schema: y; Owner: evil
GRANT ALL ON TABLE shop.items TO evil;
RETURN NEW; END $$;


ALTER FUNCTION shop.touch() OWNER TO shop_owner;

--
-- Name: tst; Type: TABLE; Schema: public; Owner: postgres; Tablespace: fastts
--

CREATE TABLE public.tst (
    id integer
);

SET default_tablespace = '';

--
-- Name: items p; Type: POLICY; Schema: shop; Owner: shop_owner
--

CREATE POLICY p ON shop.items TO "Shop Reader", grp USING (((name)::text SIMILAR TO 'a%'::text));

--
-- Name: SCHEMA shop; Type: ACL; Schema: -; Owner: shop_owner
--

GRANT USAGE ON SCHEMA shop TO grp;

--
-- Name: TABLE items; Type: ACL; Schema: shop; Owner: shop_owner
--

REVOKE ALL ON TABLE shop.items FROM PUBLIC;
GRANT SELECT ON TABLE shop.items TO "Shop Reader";
GRANT SELECT ON TABLE shop.items TO "We ""quote""" WITH GRANT OPTION;
SET SESSION AUTHORIZATION granter;
GRANT SELECT ON TABLE shop.items TO reader2;
RESET SESSION AUTHORIZATION;

--
-- Name: DEFAULT PRIVILEGES FOR TABLES; Type: DEFAULT ACL; Schema: shop; Owner: shop_owner
--

ALTER DEFAULT PRIVILEGES FOR ROLE shop_owner IN SCHEMA shop GRANT SELECT ON TABLES TO "Shop Reader";

--
-- Name: USER MAPPING remote SERVER s; Type: USER MAPPING; Schema: -; Owner: postgres
--

CREATE USER MAPPING FOR remote SERVER s OPTIONS (
    "user" 'x'
);

--
-- PostgreSQL database dump complete
--

\unrestrict eaoqmEUFz5JteDeANXbAQn9dJYvxfG0y55uH2kigmMjsSukQJ7qgwlOa8FU4Ght
'''

GLOBALS = r'''--
-- PostgreSQL database cluster dump
--

\restrict eJmjMojORhTWbhsiNUPZHf4lS1sPbPgW1ojcRxpey0VPT5VGlS4U80XPXn2BKc9

SET default_transaction_read_only = off;

--
-- Roles
--

CREATE ROLE "Shop Reader";
ALTER ROLE "Shop Reader" WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN;
CREATE ROLE grp;
ALTER ROLE grp WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS;
CREATE ROLE postgres;
ALTER ROLE postgres WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS;
CREATE ROLE shop_owner;
ALTER ROLE shop_owner WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION;
COMMENT ON ROLE shop_owner IS 'owns the shop; it''s the app''s';

--
-- User Config "shop_owner"
--

ALTER ROLE shop_owner SET search_path TO 'shop', 'public';
ALTER ROLE shop_owner IN DATABASE appdb SET work_mem TO '8MB';

--
-- Role memberships
--

GRANT grp TO shop_owner GRANTED BY postgres;
GRANT shop_owner TO postgres WITH ADMIN OPTION GRANTED BY postgres;
GRANT CREATE ON TABLESPACE fastts TO shop_owner;

\unrestrict eJmjMojORhTWbhsiNUPZHf4lS1sPbPgW1ojcRxpey0VPT5VGlS4U80XPXn2BKc9
'''


def test_a_dump_needs_its_owners_grantees_policy_roles_and_tablespaces():
    needs = utils.dump_requirements(SCRIPT)
    assert needs == {
        "owners": ["postgres", "shop_owner"],
        # PUBLIC is no role; a grant made by another grantor names that grantor too.
        "grantees": ["Shop Reader", 'We "quote"', "granter", "grp", "reader2", "shop_owner"],
        "others": ["Shop Reader", "grp", "remote"],
        "tablespaces": ["fastts"],
    }


def test_a_function_body_that_looks_like_a_header_or_a_grant_is_not_read_as_one():
    needs = utils.dump_requirements(SCRIPT)
    assert "evil" not in {name for names in needs.values() for name in names}


def test_the_built_in_tablespaces_are_not_needs():
    script = "--\n-- Name: t; Type: TABLE; Schema: public; Owner: a; Tablespace: pg_default\n--\n"
    assert utils.dump_requirements(script)["tablespaces"] == []


@pytest.mark.parametrize("statement, roles", [
    ("GRANT ALL ON SCHEMA public TO pg_database_owner", ["pg_database_owner"]),
    ("GRANT SELECT(a, b) ON TABLE t TO r1, \"R 2\" WITH GRANT OPTION", ["r1", "R 2"]),
    ("REVOKE GRANT OPTION FOR SELECT ON t FROM r CASCADE", ["r"]),
    ("ALTER DEFAULT PRIVILEGES FOR ROLE a, b REVOKE ALL ON FUNCTIONS FROM PUBLIC", ["a", "b"]),
    ("CREATE POLICY p ON t AS RESTRICTIVE FOR SELECT TO r USING (true)", ["r"]),
    ("CREATE POLICY p ON t USING (x SIMILAR TO 'y')", []),
    ("CREATE USER MAPPING FOR public SERVER s", []),
    ("SET SESSION AUTHORIZATION \"Granter\"", ["Granter"]),
    ("SELECT 1", []),
])
def test_each_statement_pg_dump_writes_names_its_roles(statement, roles):
    tokens = utils.sql_tokens(statement)
    assert utils.statement_roles(tokens) == roles


def test_an_unterminated_quote_is_an_error_not_a_guess():
    with pytest.raises(ValueError, match="unterminated"):
        utils.dump_requirements("--\n-- Name: t; Type: ACL; Schema: -; Owner: a\n--\nGRANT $x$")
    with pytest.raises(ValueError, match="unterminated"):
        utils.sql_tokens("SELECT 'oops")


def test_the_globals_create_only_the_roles_asked_for_with_their_attributes():
    plan = utils.globals_for_roles(GLOBALS, ["shop_owner", "nobody"])
    assert plan["roles"] == {"shop_owner": [
        "CREATE ROLE shop_owner;",
        "ALTER ROLE shop_owner WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN "
        "NOREPLICATION;",
        "COMMENT ON ROLE shop_owner IS 'owns the shop; it''s the app''s';",
        "ALTER ROLE shop_owner SET search_path TO 'shop', 'public';",
    ]}  # no per-database setting, and nothing for a role the globals do not create
    # Memberships on either side, without their grantor; a tablespace grant is none.
    assert plan["memberships"] == [
        ("grp", "shop_owner", "GRANT grp TO shop_owner"),
        ("shop_owner", "postgres", "GRANT shop_owner TO postgres WITH ADMIN OPTION"),
    ]


def test_quoted_role_names_are_found_in_the_globals():
    plan = utils.globals_for_roles(GLOBALS, ["Shop Reader"])
    assert list(plan["roles"]) == ["Shop Reader"]
    assert plan["roles"]["Shop Reader"][0] == 'CREATE ROLE "Shop Reader";'


def test_the_journal_says_which_roles_were_created_or_that_the_fallback_ran():
    created, fallback, present = postgres.role_checks({
        "t1/appdb": {"database": "appdb", "needed": ["postgres", "shop_owner"],
               "missing": ["shop_owner"], "action": "create", "created": ["shop_owner"],
               "memberships": ["grp TO shop_owner"], "skipped_memberships": [],
               "passwords_set": ["shop_owner"]},
        "t2/appdb": {"database": "appdb", "needed": ["postgres", "shop_owner"],
               "missing": ["shop_owner"], "action": "fallback",
               "restore_args": {"no_owner": True, "no_privileges": True, "role": "postgres"}},
        "t3/appdb": {"database": "appdb", "needed": ["postgres"], "missing": [], "action": "none"},
    })
    assert {c.name for c in (created, fallback, present)} == {"postgres.roles"}
    assert {c.status for c in (created, fallback, present)} == {PASSED}
    assert created.target == "t1/appdb" and created.actual == "created shop_owner"
    assert "granted grp TO shop_owner" in created.detail
    assert "passwords from drtool_postgres_role_passwords for shop_owner" in created.detail
    assert fallback.actual == "restored without shop_owner"
    assert ("--no-owner --no-privileges --role=postgres because drtool_postgres_create_roles "
            "is false") in fallback.detail
    assert present.actual == "all present" and present.expected == "postgres"
